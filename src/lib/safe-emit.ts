import type { Logger } from 'pino';

/** Calls a listener so that a throwing listener is logged, never propagated to the emitter. */
export function safeCall<A extends unknown[]>(
  log: Logger,
  what: string,
  fn: (...args: A) => void,
  ...args: A
): void {
  try {
    fn(...args);
  } catch (err) {
    log.error({ err, listener: what }, 'listener threw');
  }
}
