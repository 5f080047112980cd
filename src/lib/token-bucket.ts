/**
 * A token bucket: `rate` tokens a second, holding at most `burst`. The one rate limiter
 * of the server: Signal messages, per-IP request quotas (through KeyedRateLimiter),
 * NACK answers, keyframe requests and throttled log lines all spend from one.
 *
 * It is on the per-packet path (NACKs), so it allocates nothing: the caller passes the
 * time as a number (read once per packet) and the bucket mutates two numbers in place.
 * A bucket with burst 1 is an interval throttle (see `everyMs`).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  /** Kept rather than the rate: `elapsed / msPerToken` is exact for whole intervals. */
  private msPerToken: number;

  constructor(
    rate: number,
    private readonly burst: number,
    now: number = Date.now(),
  ) {
    this.msPerToken = 1000 / rate;
    this.tokens = burst;
    this.last = now;
  }

  /** At most `burst` takes per `intervalMs` (burst 1: one per interval, an interval throttle). */
  static everyMs(intervalMs: number, burst = 1, now: number = Date.now()): TokenBucket {
    const b = new TokenBucket(1000 / intervalMs, burst, now);
    b.msPerToken = intervalMs; // not 1000 / (1000 / intervalMs), which can miss by an ulp
    return b;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is there to take (0: one is there now); for Retry-After. */
  msUntilToken(now: number = Date.now()): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.msPerToken);
  }

  /** Empties the bucket: an action that happened anyway (a forced one) still counts. */
  drain(now: number = Date.now()): void {
    this.refill(now);
    this.tokens = 0;
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    // A clock that steps back (wall time corrected) earns nothing, and refilling resumes
    // from the new reading instead of waiting for the old one to come round again.
    if (elapsed < 0) {
      this.last = now;
      return;
    }
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + elapsed / this.msPerToken);
      this.last = now;
    }
  }
}
