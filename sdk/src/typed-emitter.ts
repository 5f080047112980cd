/**
 * A small typed event emitter: `Events` maps each event name to its listener's signature,
 * so `room.on('trackSubscribed', (track, publication, participant) => ...)` is checked.
 * A throwing listener is reported (to `onListenerError`, else `console.error`) and the
 * other listeners still run: an application bug in one handler never breaks the SDK's
 * own bookkeeping that emitted the event.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventMap = { [event: string]: (...args: any[]) => void };

export class TypedEmitter<Events extends EventMap> {
  readonly #listeners = new Map<keyof Events, Set<Events[keyof Events]>>();
  /** Where a throwing listener's error goes (tests and apps may set it). */
  onListenerError: (event: string, err: unknown) => void = (event, err) =>
    // eslint-disable-next-line no-console -- a browser library's only channel for an application's bug
    console.error(`chorus-sdk: a '${event}' listener threw`, err);

  on<E extends keyof Events>(event: E, listener: Events[E]): this {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  off<E extends keyof Events>(event: E, listener: Events[E]): this {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }

  /** Calls `listener` for the next `event` only. */
  once<E extends keyof Events>(event: E, listener: Events[E]): this {
    const wrapped = ((...args: Parameters<Events[E]>) => {
      this.off(event, wrapped);
      listener(...args);
    }) as Events[E];
    return this.on(event, wrapped);
  }

  /** Resolves with the arguments of the next `event`. */
  waitFor<E extends keyof Events>(event: E): Promise<Parameters<Events[E]>> {
    return new Promise((resolve) => {
      this.once(event, ((...args: Parameters<Events[E]>) => resolve(args)) as Events[E]);
    });
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  removeAllListeners(event?: keyof Events): this {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  /** Calls every listener of `event` in the order they were added; true if there was one. */
  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): boolean {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return false;
    // A copy: a listener that removes itself (once) or adds another does not disturb this round.
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        try {
          this.onListenerError(String(event), err);
        } catch {
          // The error reporter itself failed: nothing sensible is left to do with it.
        }
      }
    }
    return true;
  }
}
