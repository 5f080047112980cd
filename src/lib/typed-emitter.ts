import type { Logger } from 'pino';

/**
 * A small typed event emitter. Listeners are called safely: a throwing listener is
 * logged and the others still run.
 */
export class TypedEmitter<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<(e: never) => void>>();

  constructor(private readonly log: Logger) {}

  on<K extends keyof Events>(event: K, fn: (e: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  emit<K extends keyof Events>(event: K, e: Events[K]): void {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        (fn as (e: Events[K]) => void)(e);
      } catch (err) {
        this.log.error({ err, event: String(event) }, 'event listener threw');
      }
    }
  }
}
