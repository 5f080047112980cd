import type { Logger } from 'pino';

/** How often a TTL is checked: a quarter of it, between 1 s and 1 h. */
export function sweepIntervalMs(ttlMs: number): number {
  return Math.min(3_600_000, Math.max(1000, Math.floor(ttlMs / 4)));
}

/**
 * Runs `sweep` every `everyMs` on an unref'd timer (it never keeps the process alive),
 * one run at a time: the next is scheduled when the previous has finished, so a slow
 * store never piles runs up. A failing run is logged and the next one still comes.
 */
export class PeriodicSweep {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly name: string,
    private readonly everyMs: number,
    /** Removes what has expired; stops between batches once `active()` is false. */
    private readonly sweep: (active: () => boolean) => Promise<number>,
    private readonly log: Logger,
  ) {
    this.schedule();
  }

  /** Stops; resolves once a run under way has stopped touching the store (close it after). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.running = this.run();
    }, this.everyMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    try {
      const removed = await this.sweep(() => !this.closed);
      if (this.closed) return;
      if (removed > 0) this.log.info({ sweep: this.name, removed }, 'expired records removed');
    } catch (err) {
      this.log.warn({ err, sweep: this.name }, 'sweep failed; retrying at the next interval');
    }
    this.schedule();
  }
}
