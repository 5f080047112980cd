import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/**
 * How busy the event loop is: the share of wall time it spent running callbacks rather
 * than waiting for I/O (Node's event-loop utilization). The SFU forwards on this one
 * thread (every send into libdatachannel is synchronous here), so when it is busy nearly
 * all the time, packets queue in front of it and every call gets late. The event loop's
 * timer delay does not show that: a saturated SFU still turns its loop quickly, with the
 * backlog waiting in the native callback queues.
 *
 * The figure is the mean of the last few samples (3 s by default): long enough that a
 * burst of joins (each a few ms of SDP and ICE work) does not look like saturation,
 * short enough that real saturation shows within seconds. Until the window is full
 * (just after start or `restart()`), the time not yet measured counts as idle: one busy
 * half-second alone is a burst, not saturation.
 */
export class EventLoopLoad {
  private readonly timer: NodeJS.Timeout;
  private last: EventLoopUtilization;
  private readonly samples: number[] = [];

  constructor(
    sampleMs = 500,
    private readonly keep = 6,
  ) {
    this.last = performance.eventLoopUtilization();
    this.timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      this.samples.push(performance.eventLoopUtilization(now, this.last).utilization);
      if (this.samples.length > this.keep) this.samples.shift();
      this.last = now;
    }, sampleMs);
    this.timer.unref();
  }

  /**
   * Forgets the samples so far and measures from now. Called once the server listens:
   * building it (loading modules, compiling route schemas, mounting surfaces) keeps the
   * loop nearly 100 % busy, and counting that would refuse the first joins for seconds
   * after the server said it was ready.
   */
  restart(): void {
    this.samples.length = 0;
    this.last = performance.eventLoopUtilization();
  }

  /** Busy share of the event loop over the window, 0 to 1 (unmeasured time counts as idle). */
  get utilization(): number {
    let sum = 0;
    for (const s of this.samples) sum += s;
    return sum / this.keep;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
