import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TrackDirectory, type Publication } from '../../src/media/relay/track-directory.js';
import { LmdbStore } from '../../src/ports/store/lmdb-store.js';
import type { KvBucket, Store } from '../../src/ports/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'chorus-track-directory-'));
const real = new LmdbStore(dir);
afterAll(async () => {
  await real.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The real store, with `beforeRemoval` run just before any delete reaches it: another
 * node writing the key between the withdraw's read and its delete.
 */
function storeWithWriteBeforeRemoval(beforeRemoval: () => Promise<void>): Store {
  return {
    bucket<T>(name: string): KvBucket<T> {
      const b = real.bucket<T>(name);
      return Object.assign(Object.create(b) as KvBucket<T>, {
        delete: async (key: string) => {
          await beforeRemoval();
          return b.delete(key);
        },
        deleteIf: async (key: string, revision: Parameters<KvBucket<T>['deleteIf']>[1]) => {
          await beforeRemoval();
          return b.deleteIf(key, revision);
        },
      });
    },
    close: () => Promise.resolve(),
  };
}

const publication = (node: string, relay: string): Publication => ({
  node,
  instance: `${node}-1`,
  tracks: [
    { relay, kind: 'audio', codec: { kind: 'audio', name: 'opus', payloadType: 111, clockRate: 48000 } },
  ],
});

describe('TrackDirectory.withdraw', () => {
  it('keeps a record the publisher wrote on another node between the read and the delete', async () => {
    const other = new TrackDirectory(real);
    const newer = publication('node-b', 'bbbbbbbbbbbb');
    const directory = new TrackDirectory(
      storeWithWriteBeforeRemoval(() => other.announce('room', 'alice', newer)),
    );
    await directory.announce('room', 'alice', publication('node-a', 'aaaaaaaaaaaa'));
    await directory.withdraw('room', 'alice', ['aaaaaaaaaaaa']);
    expect(await other.find('room', 'alice')).toEqual(newer);
  });

  it('removes its own record when nobody wrote in between', async () => {
    const directory = new TrackDirectory(storeWithWriteBeforeRemoval(() => Promise.resolve()));
    await directory.announce('room2', 'bob', publication('node-a', 'cccccccccccc'));
    await directory.withdraw('room2', 'bob', ['cccccccccccc']);
    expect(await directory.find('room2', 'bob')).toBeUndefined();
  });
});
