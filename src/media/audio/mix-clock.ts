import { FRAME_MS } from './pcm-frame.js';

export interface Tickable {
  tick(): void;
}

/**
 * One 20 ms timer for every mixer of the process, corrected against the monotonic
 * clock so that mixers run 50 ticks a second on average (a plain setInterval drifts
 * late). After a stall it catches up at most `maxCatchUp` ticks and skips the rest:
 * listeners lose that audio rather than receiving a burst.
 */
export class MixClock {
  private readonly members = new Set<Tickable>();
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  /** Ticks skipped after stalls, for logs and metrics. */
  skippedTicks = 0;

  constructor(
    private readonly onError: (err: unknown) => void,
    private readonly maxCatchUp = 5,
  ) {}

  add(member: Tickable): void {
    this.members.add(member);
    if (!this.timer) {
      this.next = performance.now() + FRAME_MS;
      this.schedule();
    }
  }

  remove(member: Tickable): void {
    this.members.delete(member);
    if (this.members.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.fire(), Math.max(0, this.next - performance.now()));
  }

  private fire(): void {
    let due = Math.floor((performance.now() - this.next) / FRAME_MS) + 1;
    if (due > this.maxCatchUp) {
      this.skippedTicks += due - this.maxCatchUp;
      this.next += (due - this.maxCatchUp) * FRAME_MS;
      due = this.maxCatchUp;
    }
    for (let t = 0; t < due; t++) {
      for (const m of this.members) {
        try {
          m.tick();
        } catch (err) {
          this.onError(err);
        }
      }
      this.next += FRAME_MS;
    }
    if (this.members.size > 0) this.schedule();
    else this.timer = undefined;
  }
}
