import type { Logger } from 'pino';

/**
 * Wraps a callback handed to node-datachannel. An exception escaping a native callback
 * aborts the whole process (it bypasses uncaughtException), so every callback body runs
 * through here: the error is logged and only the peer concerned is torn down.
 */
export function guarded<A extends unknown[]>(
  log: Logger,
  what: string,
  onFailure: (err: unknown) => void,
  fn: (...args: A) => void,
): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      try {
        log.error({ err, callback: what }, 'native callback failed; closing the peer');
        onFailure(err);
      } catch {
        // Nothing may escape into native code.
      }
    }
  };
}
