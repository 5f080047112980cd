import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/ports/store/lmdb-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('LmdbStore.close', () => {
  it('closes right after a read without lmdb throwing from its read-reset timer', async () => {
    const errors: unknown[] = [];
    const onError = (err: unknown): void => void errors.push(err);
    process.prependListener('uncaughtException', onError);
    try {
      for (let i = 0; i < 5; i++) {
        const dir = mkdtempSync(join(tmpdir(), 'chorus-lmdb-close-'));
        dirs.push(dir);
        const store = new LmdbStore(dir);
        const bucket = store.bucket<{ n: number }>('things');
        await bucket.put('a', { n: i });
        // A read schedules lmdb-js's 0 ms read-transaction reset; close in the same tick.
        expect(await bucket.get('a')).toEqual({ n: i });
        const closed = store.close();
        await expect(bucket.get('a')).rejects.toThrow(/closed/);
        await closed;
        // Timers scheduled before this one (lmdb's read reset) run first: if one throws, it is now.
        await new Promise((r) => setTimeout(r, 0));
      }
    } finally {
      process.removeListener('uncaughtException', onError);
    }
    expect(errors).toEqual([]);
  });
});
