import { TokenBucket } from './token-bucket.js';

interface Entry {
  bucket: TokenBucket;
  lastUsed: number;
}

export interface KeyedRateLimiterOptions {
  /** Tokens per second each key earns. */
  ratePerSecond: number;
  /** Tokens a key may spend at once (and holds when idle). */
  burst: number;
  /** Keys tracked at once; past it the least recently used are forgotten. */
  maxKeys?: number;
}

/**
 * One token bucket per key (a client IP), for routes that create durable records.
 *
 * The map is bounded two ways, and forgetting a key only ever favours its client (it
 * starts again with a full bucket), so neither can refuse anyone wrongly:
 * - a key idle long enough to have refilled is equivalent to a new one, and is dropped;
 * - past `maxKeys` the least recently used key is dropped (the map's insertion order is
 *   kept as recency order by re-inserting a key on each use).
 */
export class KeyedRateLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly maxKeys: number;
  /** After this long unused, a bucket is full again: the same as no entry. */
  private readonly refillMs: number;

  constructor(private readonly opts: KeyedRateLimiterOptions) {
    this.maxKeys = opts.maxKeys ?? 65_536;
    this.refillMs = (opts.burst / opts.ratePerSecond) * 1000;
  }

  /** Spends one of `key`'s tokens. 0 when allowed; otherwise ms until one is there. */
  take(key: string, now: number = Date.now()): number {
    const entry = this.entry(key, now);
    if (entry.bucket.take(now)) return 0;
    return Math.max(1, entry.bucket.msUntilToken(now));
  }

  /** Like `take` but spends nothing: 0 when `key` has a token now. */
  check(key: string, now: number = Date.now()): number {
    const entry = this.entries.get(key);
    if (!entry) return 0;
    return entry.bucket.msUntilToken(now);
  }

  get size(): number {
    return this.entries.size;
  }

  private entry(key: string, now: number): Entry {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
    } else {
      this.prune(now);
      entry = { bucket: new TokenBucket(this.opts.ratePerSecond, this.opts.burst, now), lastUsed: now };
    }
    entry.lastUsed = now;
    this.entries.set(key, entry);
    return entry;
  }

  /** Drops refilled keys from the old end, then the oldest while the map is full. */
  private prune(now: number): void {
    for (const [key, e] of this.entries) {
      if (now - e.lastUsed < this.refillMs && this.entries.size < this.maxKeys) break;
      this.entries.delete(key);
    }
  }
}

/**
 * A per-key limiter of `count` per `periodSeconds` with bursts of `burst`, or none when
 * `count` is 0 (the settings' "off"): how every per-IP quota is declared.
 */
export function keyedLimiterOrNone(
  count: number,
  periodSeconds: number,
  burst: number,
): KeyedRateLimiter | undefined {
  return count > 0 ? new KeyedRateLimiter({ ratePerSecond: count / periodSeconds, burst }) : undefined;
}
