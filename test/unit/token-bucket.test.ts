import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/core/token-bucket.js';

describe('TokenBucket', () => {
  it('allows a burst, then the rate', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token
    expect(b.take(100)).toBe(true); // one token after 100 ms at 10/s
    expect(b.take(10_000)).toBe(true);
    expect([b.take(10_000), b.take(10_000), b.take(10_000)]).toEqual([true, true, false]); // capped at burst
  });
});
