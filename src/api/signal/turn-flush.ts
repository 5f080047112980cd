import type { Logger } from 'pino';

/** Something holding what one turn of the event loop queued for a client. */
export interface TurnFlushable {
  flush(): void;
}

/** Settled once: `then` on it runs a callback when the current turn's ticks are done. */
const SETTLED = Promise.resolve();

/**
 * The connections of one surface with messages queued during the current turn, written
 * together when it ends. Deferred by one promise reaction per turn, not by a
 * `process.nextTick` per connection: on Node 24 the tick (its TickObject, async id and
 * context frame, then the queue's drain) was 5 % of the server's busy CPU in the profile
 * of the forwarding load, called once per read (BENCHMARKS.md, #17.1 session 12); a
 * reaction on a settled promise costs a third of one. It still runs before the next I/O
 * callback (after the nextTick queue), so a turn's messages leave at its end as before.
 */
export class TurnFlush {
  private pending: TurnFlushable[] = [];
  private readonly run = (): void => {
    const due = this.pending;
    this.pending = [];
    for (const c of due) {
      // A throw here would be an unhandled rejection, which stops the process.
      try {
        c.flush();
      } catch (err) {
        this.log.error({ err }, 'signal: writing a turn of messages failed');
      }
    }
  };

  constructor(private readonly log: Logger) {}

  /** `c` started a queue this turn (it adds itself then, once): flushed when the turn ends. */
  add(c: TurnFlushable): void {
    if (this.pending.push(c) === 1) void SETTLED.then(this.run);
  }
}
