import { describe, expect, it } from 'vitest';
import { KeyedRateLimiter } from '../../src/lib/keyed-rate-limiter.js';
import { TokenBucket } from '../../src/lib/token-bucket.js';

describe('KeyedRateLimiter', () => {
  it('gives each key its own burst, then says how long to wait', () => {
    const l = new KeyedRateLimiter({ ratePerSecond: 1, burst: 2 });
    expect([l.take('a', 0), l.take('a', 0)]).toEqual([0, 0]);
    expect(l.take('a', 0)).toBe(1000);
    expect(l.take('a', 400)).toBe(600);
    expect(l.take('b', 400)).toBe(0);
    expect(l.take('a', 1000)).toBe(0);
    expect(l.check('a', 1000)).toBe(1000); // check spends nothing
    expect(l.check('unknown', 1000)).toBe(0);
  });

  it('forgets refilled keys and, when full, the least recently used, never refusing wrongly', () => {
    const l = new KeyedRateLimiter({ ratePerSecond: 1, burst: 1, maxKeys: 3 });
    l.take('a', 0);
    l.take('b', 0);
    l.take('c', 0);
    l.take('a', 10); // a is now the most recent
    l.take('d', 20); // full: b, the oldest, goes
    expect(l.size).toBe(3);
    expect(l.take('c', 30)).toBeGreaterThan(0); // c is still tracked and still empty
    l.take('e', 5000); // everything else has refilled: all dropped
    expect(l.size).toBe(1);
  });
});

describe('TokenBucket.msUntilToken', () => {
  it('is 0 with a token, else the time the rate needs for one', () => {
    const b = new TokenBucket(4, 1, 0);
    expect(b.msUntilToken(0)).toBe(0);
    b.take(0);
    expect(b.msUntilToken(0)).toBe(250);
    expect(b.msUntilToken(100)).toBe(150);
  });
});
