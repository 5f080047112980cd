import { afterEach, describe, expect, it } from 'vitest';
import { EventLoopLoad } from '../../src/server/event-loop-load.js';
import { eventually } from '../fixtures/ws-client.js';

const block = (ms: number): void => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* busy */
  }
};

let load: EventLoopLoad | undefined;
afterEach(() => load?.close());

describe('EventLoopLoad', () => {
  it('counts the part of the window not yet measured as idle: one busy sample is a burst, not saturation', async () => {
    load = new EventLoopLoad(50, 6);
    block(120);
    await eventually(() => load!.utilization > 0, 5000, 'a first sample');
    // One (or, on a slow machine, two) of six samples busy, not 100 %.
    expect(load.utilization).toBeLessThan(0.5);
  });

  it('forgets what it measured before restart()', async () => {
    load = new EventLoopLoad(50, 6);
    // Busy (yielding a turn every 60 ms so samples are taken) until the window says so.
    const deadline = Date.now() + 10_000;
    while (load.utilization <= 0.5) {
      if (Date.now() > deadline) throw new Error('the window never filled');
      block(60);
      await new Promise((r) => setImmediate(r));
    }
    load.restart();
    expect(load.utilization).toBe(0);
  });
});
