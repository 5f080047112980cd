import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay } from '../../sdk/src/backoff.js';

describe('SDK backoff', () => {
  const middle = (): number => 0.5; // no jitter: the nominal delay

  it('doubles from the initial delay up to the ceiling', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6].map((n) =>
      backoffDelay(n, { initialMs: 300, maxMs: 8000, random: middle }),
    );
    expect(delays).toEqual([300, 600, 1200, 2400, 4800, 8000, 8000]);
  });

  it('jitter stays within its spread and never passes the ceiling or goes negative', () => {
    for (const r of [0, 0.1, 0.5, 0.9, 0.999999]) {
      const d = backoffDelay(2, { initialMs: 100, jitter: 0.25, random: () => r });
      expect(d).toBeGreaterThanOrEqual(300);
      expect(d).toBeLessThanOrEqual(500);
      const top = backoffDelay(20, { initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => r });
      expect(top).toBeLessThanOrEqual(1000);
      expect(top).toBeGreaterThanOrEqual(500);
    }
    expect(backoffDelay(-3, { initialMs: 100, random: middle })).toBe(100);
  });

  it('different random draws give different delays (clients do not retry in step)', () => {
    const a = backoffDelay(3, { random: () => 0.05 });
    const b = backoffDelay(3, { random: () => 0.95 });
    expect(a).not.toBe(b);
  });

  it('Backoff counts attempts, is exhausted after maxAttempts, and reset starts over', () => {
    const b = new Backoff({ initialMs: 100, maxAttempts: 3, random: middle });
    expect(b.exhausted).toBe(false);
    expect([b.next(), b.next(), b.next()]).toEqual([100, 200, 400]);
    expect(b.attempt).toBe(3);
    expect(b.exhausted).toBe(true);
    b.reset();
    expect(b.exhausted).toBe(false);
    expect(b.next()).toBe(100);
  });

  it('without maxAttempts it is never exhausted', () => {
    const b = new Backoff({ random: middle });
    for (let i = 0; i < 50; i++) b.next();
    expect(b.exhausted).toBe(false);
    expect(b.next()).toBe(8000);
  });
});
