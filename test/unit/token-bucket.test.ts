import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/lib/token-bucket.js';

describe('TokenBucket', () => {
  it('allows a burst, then the rate', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token
    expect(b.take(100)).toBe(true); // one token after 100 ms at 10/s
    expect(b.take(10_000)).toBe(true);
    expect([b.take(10_000), b.take(10_000), b.take(10_000)]).toEqual([true, true, false]); // capped at burst
  });

  it('refills continuously: fractions of a token add up', () => {
    const b = new TokenBucket(4, 1, 0); // one token every 250 ms
    expect(b.take(0)).toBe(true);
    for (let t = 50; t < 250; t += 50) expect(b.take(t)).toBe(false);
    expect(b.take(250)).toBe(true);
    expect(b.msUntilToken(250)).toBe(250);
    expect(b.msUntilToken(400)).toBe(100);
    expect(b.msUntilToken(500)).toBe(0);
  });

  it('never holds more than the burst, however long it was idle', () => {
    const b = new TokenBucket(1000, 5, 0);
    let granted = 0;
    while (b.take(3_600_000)) granted++;
    expect(granted).toBe(5);
  });

  it('has no double burst at a window edge: a drained bucket earns only the rate', () => {
    // A fixed 1-s window of 400 lets 400 pass at 999 ms and 400 more at 1000 ms. The
    // bucket, drained at 999 ms, has earned only 0.4 tokens by 1000 ms.
    const b = new TokenBucket(400, 400, 0);
    let first = 0;
    while (b.take(999)) first++;
    let second = 0;
    while (b.take(1000)) second++;
    expect(first).toBe(400);
    expect(second).toBe(0);
    let later = 0;
    while (b.take(1999)) later++;
    expect(later).toBe(400); // a full second later: a full bucket again, no more
  });

  it('survives time going backwards: earns nothing, and refills from the new reading', () => {
    const b = new TokenBucket(1, 1, 1_000_000);
    expect(b.take(1_000_000)).toBe(true);
    // The wall clock steps back an hour: no token appears from the step ...
    expect(b.take(1_000_000 - 3_600_000)).toBe(false);
    // ... and the bucket does not wait an hour for the old reading: one second later it has one.
    expect(b.take(1_000_000 - 3_600_000 + 999)).toBe(false);
    expect(b.take(1_000_000 - 3_600_000 + 1000)).toBe(true);
  });

  it('is an exact interval throttle with burst 1, and drain restarts the interval', () => {
    for (const interval of [15, 30, 333, 1000, 2500]) {
      const b = TokenBucket.everyMs(interval, 1, 0);
      expect(b.take(0)).toBe(true);
      expect(b.take(interval - 1)).toBe(false);
      expect(b.take(interval)).toBe(true); // exactly one interval later, not an ulp after
    }
    const b = TokenBucket.everyMs(1000, 1, 0);
    b.drain(500); // a forced action at 500 ms: the next free one waits a full interval from it
    expect(b.take(1000)).toBe(false);
    expect(b.msUntilToken(1000)).toBe(500);
    expect(b.take(1500)).toBe(true);
  });
});
