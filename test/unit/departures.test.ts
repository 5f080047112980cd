import { describe, expect, it } from 'vitest';
import { Departures } from '../../src/api/voip/departures.js';
import { eventually } from '../fixtures/ws-client.js';

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('Departures: slots of ended streams freed a slice per turn (#17.3)', () => {
  it('frees at most perTurn a turn, in the order the streams ended, and all of them in the end', async () => {
    const errors: unknown[] = [];
    const d = new Departures(64, (err) => errors.push(err));
    const freed: number[] = [];
    for (let i = 0; i < 300; i++) d.add(`m${i}`, () => freed.push(i));
    // Nothing in the turn the streams ended in.
    expect(freed).toHaveLength(0);
    expect(d.pending).toBe(300);
    await nextTurn();
    expect(freed).toEqual(Array.from({ length: 64 }, (_, i) => i));
    await nextTurn();
    expect(freed).toHaveLength(128);
    await eventually(() => freed.length === 300, 30_000, 'every slot freed');
    expect(freed).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(d.pending).toBe(0);
    expect(d.stats).toEqual({ released: 300, largestSlice: 64 });
    expect(errors).toEqual([]);
  });

  it('frees a member`s queued slots at once when they come back, once, and goes on past a release that throws', async () => {
    const errors: unknown[] = [];
    const d = new Departures(2, (err) => errors.push(err));
    const freed: string[] = [];
    d.add('a', () => freed.push('a1'));
    d.add('b', () => {
      throw new Error('side site down');
    });
    d.add('a', () => freed.push('a2'));
    d.add('c', () => freed.push('c'));
    d.settle('a'); // `a` reconnects: its slots must be free now
    expect(freed).toEqual(['a1', 'a2']);
    d.settle('nobody');
    await eventually(() => d.pending === 0 && freed.length === 3, 30_000, 'the rest freed');
    expect(freed).toEqual(['a1', 'a2', 'c']); // a's not twice
    expect(errors).toHaveLength(1);
    expect(d.stats.released).toBe(4);
  });

  it('frees everything queued at drain (shutdown)', () => {
    const d = new Departures(1, () => undefined);
    const freed: number[] = [];
    for (let i = 0; i < 10; i++) d.add('m', () => freed.push(i));
    d.drain();
    expect(freed).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(d.pending).toBe(0);
  });
});
