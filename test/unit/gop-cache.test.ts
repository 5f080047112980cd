import { describe, expect, it } from 'vitest';
import { GopCache } from '../../src/media/stream/gop-cache.js';

describe('GopCache', () => {
  it('keeps chunks in order within the byte limit, counting 16 bytes each', () => {
    const c = new GopCache(3 * (100 + 16));
    for (let i = 0; i < 5; i++) c.push(Buffer.alloc(100, i));
    const seen: number[] = [];
    c.forEach((b) => seen.push(b[0]!));
    expect(seen).toEqual([2, 3, 4]);
    expect(c.size).toBe(3 * 116);
    expect(c.first()![0]).toBe(2);
  });

  it('holds no chunk bigger than the limit, is disabled at 0, and stays bounded over many pushes', () => {
    const c = new GopCache(1000);
    c.push(Buffer.alloc(2000));
    expect(c.count).toBe(0);
    const off = new GopCache(0);
    off.push(Buffer.alloc(1));
    expect(off.count).toBe(0);
    const long = new GopCache(10 * 116);
    for (let i = 0; i < 100_000; i++) long.push(Buffer.alloc(100));
    expect(long.count).toBe(10);
  });

  it('does not copy: the cached buffer is the published one', () => {
    const c = new GopCache(1 << 20);
    const b = Buffer.from('header');
    c.push(b);
    expect(c.first()).toBe(b);
  });
});
