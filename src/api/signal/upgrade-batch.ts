import type { Logger } from 'pino';

/**
 * The upgrades that arrived during one pass of the event loop's poll phase, handed over
 * together in its check phase (`setImmediate`), in the order they came.
 *
 * Why: answered one by one, each 101 was written between the reads of its neighbours, and
 * an accept cost 1.4-1.5x what it costs answered together: server CPU per connection in
 * the 10,000-connection burst, median 173.5 against 116.5 us (PeerJS 158.5; BENCHMARKS.md,
 * #17.1 session 15). Part of it is the kernel's: the write wakes the client, and the wake-up
 * inside the 101's write fell by two thirds. Deferring only the writes (the session checks
 * run as they come) saved as much as deferring the checks too, so this defers both: the
 * simpler of the two. An upgrade waits at most for the rest of the poll phase's callbacks.
 */
export class UpgradeBatch<T> {
  private pending: T[] = [];
  private readonly run = (): void => {
    const due = this.pending;
    this.pending = [];
    for (const upgrade of due) {
      // A throw here would be an uncaught exception, which stops the process; the others
      // of the batch go on.
      try {
        this.take(upgrade);
      } catch (err) {
        this.log.error({ err }, 'signal: an upgrade could not be taken');
        this.failed(upgrade);
      }
    }
  };

  /** `take` starts one upgrade's work; `failed` ends the socket of one that threw. */
  constructor(
    private readonly take: (upgrade: T) => void,
    private readonly failed: (upgrade: T) => void,
    private readonly log: Logger,
  ) {}

  add(upgrade: T): void {
    if (this.pending.push(upgrade) === 1) setImmediate(this.run);
  }
}
