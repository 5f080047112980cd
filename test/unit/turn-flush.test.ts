// TurnFlush (#17.1): the connections that queued messages during a turn are written once
// each when the turn ends, after its ticks and before the next I/O or immediate; one that
// throws is logged and the others are still written.
import { describe, expect, it } from 'vitest';
import { logRecorder as recorder } from '../fixtures/log-recorder.js';
import { TurnFlush } from '../../src/api/signal/turn-flush.js';

describe('TurnFlush', () => {
  it('flushes each added connection once, at the end of the turn', async () => {
    const { log } = recorder();
    const turn = new TurnFlush(log);
    const order: string[] = [];
    const a = { flush: () => order.push('a') };
    const b = { flush: () => order.push('b') };
    // Added from a macrotask, as a socket's read callback adds them in the server.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        turn.add(a);
        turn.add(b);
        process.nextTick(() => order.push('tick'));
        expect(order).toEqual([]);
        resolve();
      }),
    );
    expect(order).toEqual(['tick', 'a', 'b']);
    // A later turn starts empty.
    turn.add(a);
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['tick', 'a', 'b', 'a']);
  });

  it('logs a connection whose write throws and still writes the others', async () => {
    const { log, lines } = recorder();
    const turn = new TurnFlush(log);
    const written: string[] = [];
    turn.add({
      flush: () => {
        throw new Error('socket gone');
      },
    });
    turn.add({ flush: () => written.push('b') });
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toEqual(['b']);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([
      'signal: writing a turn of messages failed',
    ]);
  });
});
