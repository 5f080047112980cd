import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HeartbeatScheduler, type HeartbeatTarget } from '../../src/lib/heartbeat-scheduler.js';

/** A target that records what the scheduler did to it, and when. */
function recorder(clock: () => number) {
  const beats: number[] = [];
  const expired: Array<{ why: string; at: number }> = [];
  const target: HeartbeatTarget = {
    beat: () => beats.push(clock()),
    expire: (why) => expired.push({ why, at: clock() }),
  };
  return { target, beats, expired };
}

describe('HeartbeatScheduler', () => {
  // Fake time drives both the wheel's clock and its (unref'd) interval timer.
  const now = () => Date.now();
  let wheel: HeartbeatScheduler;
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    wheel.close();
    vi.useRealTimers();
  });

  it('terminates a connection that does not answer its ping, keeps one that does', () => {
    wheel = new HeartbeatScheduler({ now, tickMs: 100 });
    const silent = recorder(now);
    const answering = recorder(now);
    wheel.watch(silent.target, { beatMs: 1000, answerRequired: true });
    const w = wheel.watch(answering.target, { beatMs: 1000, answerRequired: true });
    answering.target.beat = () => {
      answering.beats.push(now());
      w.heard(); // the pong
    };
    vi.advanceTimersByTime(1000);
    expect(silent.beats).toEqual([1000]); // first ping, one interval after joining
    expect(silent.expired).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(silent.expired).toEqual([{ why: 'missed-beat', at: 2000 }]);
    vi.advanceTimersByTime(10_000);
    expect(silent.beats).toEqual([1000]); // stopped: no more pings to a dead socket
    expect(answering.expired).toEqual([]);
    expect(answering.beats).toHaveLength(12);
    expect(wheel.size).toBe(1);
  });

  it('closes a connection silent for its idle timeout; activity moves the deadline', () => {
    wheel = new HeartbeatScheduler({ now, tickMs: 250 });
    const quiet = recorder(now);
    const chatty = recorder(now);
    wheel.watch(quiet.target, { beatMs: 20_000, idleMs: 1000 });
    const w = wheel.watch(chatty.target, { beatMs: 20_000, idleMs: 1000 });
    for (let t = 0; t < 5000; t += 500) {
      vi.advanceTimersByTime(500);
      w.heard();
    }
    expect(quiet.expired).toEqual([{ why: 'idle', at: 1000 }]);
    expect(chatty.expired).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(chatty.expired).toEqual([{ why: 'idle', at: 6000 }]);
    expect(wheel.size).toBe(0);
  });

  it('spreads 10,000 sockets that joined at once across the interval, in bounded batches', () => {
    wheel = new HeartbeatScheduler({ now, tickMs: 250, maxPerTick: 200 });
    const perTick = new Map<number, number>();
    const count = () => perTick.set(now(), (perTick.get(now()) ?? 0) + 1);
    for (let i = 0; i < 10_000; i++)
      wheel.watch({ beat: count, expire: () => undefined }, { beatMs: 30_000 });
    // All are due at 30 s; 200 a tick take them to 42.25 s. Each then keeps the phase of
    // its own first beat, so the second round (60 s to 72.25 s) is spread the same way.
    vi.advanceTimersByTime(75_000);
    const ticks = [...perTick.entries()];
    expect(ticks.reduce((s, [, n]) => s + n, 0)).toBe(20_000); // two beats each, none skipped
    expect(Math.max(...ticks.map(([, n]) => n))).toBe(200);
    const first = ticks.filter(([t]) => t < 60_000).map(([t]) => t);
    const second = ticks.filter(([t]) => t >= 60_000).map(([t]) => t);
    expect([Math.min(...first), Math.max(...first)]).toEqual([30_000, 42_250]);
    expect([Math.min(...second), Math.max(...second)]).toEqual([60_000, 72_250]);
  });

  it('with its defaults, never pings more than 100 of 10,000 sockets in one tick, and pings each every round', () => {
    wheel = new HeartbeatScheduler({ now });
    const perTick = new Map<number, number>();
    const pinged = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      wheel.watch(
        {
          beat: () => {
            perTick.set(now(), (perTick.get(now()) ?? 0) + 1);
            pinged.add(i);
          },
          expire: () => undefined,
        },
        { beatMs: 30_000 },
      );
    }
    vi.advanceTimersByTime(29_999);
    expect(perTick.size).toBe(0); // nobody before its interval
    vi.advanceTimersByTime(45_001);
    const counts = [...perTick.values()];
    expect(pinged.size).toBe(10_000);
    expect(counts.reduce((s, n) => s + n, 0)).toBe(20_000); // two rounds, none skipped
    expect(Math.max(...counts)).toBe(100);
    // The burst is paced over 100 ticks of 50 ms, not swept at once.
    expect(counts.length).toBeGreaterThanOrEqual(200);
  });

  it('ends a tick once it has run its time budget, and leaves the rest to the next ticks', () => {
    // Each ping costs 0.25 ms of the wheel's clock: a slow socket write on a busy core.
    let spent = 0;
    const clock = () => Date.now() + spent;
    wheel = new HeartbeatScheduler({ now: clock, tickMs: 50, maxPerTick: 1000, tickBudgetMs: 3 });
    const perTick = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      wheel.watch(
        {
          beat: () => {
            perTick.set(Date.now(), (perTick.get(Date.now()) ?? 0) + 1);
            spent += 0.25;
          },
          expire: () => undefined,
        },
        { beatMs: 10_000 },
      );
    }
    vi.advanceTimersByTime(20_000);
    const counts = [...perTick.values()];
    expect(counts.reduce((s, n) => s + n, 0)).toBeGreaterThanOrEqual(1000); // all got their first ping
    // The clock is read every 16 entries: 16 x 0.25 ms passes the 3 ms budget.
    expect(Math.max(...counts)).toBe(16);
  });

  it('forgets stopped watches and runs its unref-ed timer only while something is watched', () => {
    wheel = new HeartbeatScheduler({ now, tickMs: 100 });
    const r = recorder(now);
    const w = wheel.watch(r.target, { beatMs: 500 });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(500);
    w.stop();
    w.stop(); // idempotent
    expect(wheel.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(r.beats).toEqual([500]);
  });

  it('keeps going when one target throws, and ignores watches after close', () => {
    const warnings: unknown[] = [];
    wheel = new HeartbeatScheduler({ now, tickMs: 100, log: { warn: (f) => warnings.push(f) } });
    const ok = recorder(now);
    wheel.watch(
      {
        beat: () => {
          throw new Error('socket gone');
        },
        expire: () => undefined,
      },
      { beatMs: 200 },
    );
    wheel.watch(ok.target, { beatMs: 200 });
    vi.advanceTimersByTime(1000);
    expect(warnings).toHaveLength(1);
    expect(ok.beats).toEqual([200, 400, 600, 800, 1000]);
    wheel.close();
    expect(vi.getTimerCount()).toBe(0);
    const late = recorder(now);
    wheel.watch(late.target, { beatMs: 100 });
    vi.advanceTimersByTime(1000);
    expect(late.beats).toEqual([]);
  });
});
