import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * How late the event loop runs. Everything real-time in Chorus (forwarding, mixing,
 * signalling) runs on this one thread, so its delay is the load that matters: when it
 * grows, taking on more work degrades what is already being served.
 *
 * The figure is the mean delay over the last window (1 s), or over the window so far when
 * that is worse, so a saturated loop shows within a second; one pause (a major GC) is
 * diluted by the timer's other samples.
 */
export class EventLoopLoad {
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private lastWindowLagMs = 0;

  constructor(
    windowMs = 1000,
    private readonly resolutionMs = 10,
  ) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.lastWindowLagMs = this.windowLagMs();
      this.histogram.reset();
    }, windowMs);
    this.timer.unref();
  }

  /** The histogram times its own timer: what exceeds the resolution is delay. */
  private windowLagMs(): number {
    const h = this.histogram;
    return h.count > 0 ? Math.max(0, h.mean / 1e6 - this.resolutionMs) : 0;
  }

  /** Mean event-loop delay in ms, as above. */
  get lagMs(): number {
    return Math.max(this.lastWindowLagMs, this.windowLagMs());
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
