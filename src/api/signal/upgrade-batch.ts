import type { Logger } from 'pino';

/**
 * The upgrades that arrived during one pass of the event loop's poll phase, handed over
 * together in its check phase (`setImmediate`), in the order they came.
 *
 * Why: taken one by one, each accept ran its session check (the HMAC, the store read, the
 * record's decode) between the kernel's work for the previous and the next socket, and
 * paid for that code cold: a check that costs 4 us in a loop cost 30 us there (server CPU
 * per accept with the check left out, BENCHMARKS.md, #17.1 session 15). Handed over
 * together, the checks run back to back and the 101s leave together. An upgrade waits at
 * most for the rest of the poll phase's callbacks.
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
