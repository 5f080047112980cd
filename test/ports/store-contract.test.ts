import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsLink } from '../../src/ports/nats/nats-link.js';
import { PortUnavailableError } from '../../src/ports/port-errors.js';
import { KvStore } from '../../src/ports/store/kv-store.js';
import { decodeKvKey, encodeKvKey, kvBucketName } from '../../src/ports/store/kv-names.js';
import { LmdbStore } from '../../src/ports/store/lmdb-store.js';
import type { Revision, Store } from '../../src/ports/store/store.js';
import { NatsServerProcess } from '../fixtures/nats-server.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually, within } from '../fixtures/ws-client.js';

const log = pino({ level: 'silent' });

/** Two handles on one store: two nodes (two NATS connections) or two opens of one LMDB. */
interface StorePair {
  a: Store;
  b: Store;
}

let seq = 0;
/** A bucket of its own per test: tests share one server or data directory. */
const freshBucket = (): string => `b${++seq}-${Date.now().toString(36)}`;

/** Keys at the edges of the store alphabet `[-/_=.A-Za-z0-9]`, KV's awkward ones included. */
const ODD_KEYS = [
  '.a',
  'a.',
  'a..b',
  '...',
  '=',
  'x=2E',
  '=3D=',
  'a/b/c',
  'A-Z_09',
  'x.y.z',
  'k'.repeat(300),
];

function storeContract(name: string, pair: () => StorePair): void {
  describe(`Store contract: ${name}`, () => {
    it('gets, puts, creates and deletes', async () => {
      const { a, b } = pair();
      const bucket = freshBucket();
      const ka = a.bucket<{ n: number; s: string }>(bucket);
      const kb = b.bucket<{ n: number; s: string }>(bucket);
      expect(await ka.get('k1')).toBeUndefined();
      expect(await ka.entry('k1')).toBeUndefined();
      await ka.put('k1', { n: 1, s: 'one' });
      expect(await kb.get('k1')).toEqual({ n: 1, s: 'one' });
      expect(await kb.create('k1', { n: 2, s: 'two' })).toBe(false);
      expect(await kb.get('k1')).toEqual({ n: 1, s: 'one' });
      expect(await kb.create('k2', { n: 2, s: 'two' })).toBe(true);
      await ka.delete('k1');
      expect(await kb.get('k1')).toBeUndefined();
      expect(await kb.entry('k1')).toBeUndefined();
      // A deleted key can be created again.
      expect(await kb.create('k1', { n: 3, s: 'three' })).toBe(true);
      expect(await ka.get('k1')).toEqual({ n: 3, s: 'three' });
      await ka.delete('never-there');
      expect((await ka.keys()).sort()).toEqual(['k1', 'k2']);
    });

    it('keeps buckets apart, even names that differ only by escaping', async () => {
      const { a } = pair();
      const base = freshBucket();
      const one = a.bucket<string>(`${base}_x`);
      const two = a.bucket<string>(`${base}_5fx`);
      await one.put('k', 'one');
      await two.put('k', 'two');
      expect(await one.get('k')).toBe('one');
      expect(await two.get('k')).toBe('two');
    });

    it('updates only on the current revision', async () => {
      const { a, b } = pair();
      const bucket = freshBucket();
      const ka = a.bucket<string>(bucket);
      const kb = b.bucket<string>(bucket);
      await ka.put('k', 'v1');
      const e1 = await kb.entry('k');
      expect(e1?.value).toBe('v1');
      expect(await kb.update('k', 'v2', e1!.revision)).toBe(true);
      expect(await kb.get('k')).toBe('v2');
      // The old revision is stale now.
      expect(await kb.update('k', 'v3', e1!.revision)).toBe(false);
      expect(await kb.get('k')).toBe('v2');
      const e2 = await kb.entry('k');
      expect(e2!.revision).not.toBe(e1!.revision);
      expect(await kb.update('missing', 'x', e2!.revision)).toBe(false);
      expect(await kb.get('missing')).toBeUndefined();
      expect(await kb.update('k', 'x', 'not-a-revision' as Revision)).toBe(false);
      // A delete in between makes the revision stale too.
      await kb.delete('k');
      expect(await kb.update('k', 'x', e2!.revision)).toBe(false);
      expect(await kb.get('k')).toBeUndefined();
    });

    it('deletes only on the current revision: a record written again since the read is kept', async () => {
      const { a, b } = pair();
      const bucket = freshBucket();
      const ka = a.bucket<string>(bucket);
      const kb = b.bucket<string>(bucket);
      await ka.put('k', 'v1');
      const e1 = await kb.entry('k');
      // Written again by the other handle between the read and the delete.
      await ka.put('k', 'v2');
      expect(await kb.deleteIf('k', e1!.revision)).toBe(false);
      expect(await ka.get('k')).toBe('v2');
      const e2 = await kb.entry('k');
      expect(await kb.deleteIf('k', e2!.revision)).toBe(true);
      // Read back through the handle that wrote, as the update test does: a second LMDB
      // open in one process (a test-only setup) may read an older snapshot for a moment.
      expect(await kb.get('k')).toBeUndefined();
      expect(await kb.entry('k')).toBeUndefined();
      // Deleted already, missing, or not a revision at all: nothing happens.
      expect(await kb.deleteIf('k', e2!.revision)).toBe(false);
      expect(await kb.deleteIf('missing', e2!.revision)).toBe(false);
      await kb.put('k', 'v3');
      expect(await kb.deleteIf('k', 'not-a-revision' as Revision)).toBe(false);
      expect(await kb.get('k')).toBe('v3');
      // Two conditional deletes of one revision racing: exactly one deletes.
      const e3 = await kb.entry('k');
      const both = await Promise.all([ka.deleteIf('k', e3!.revision), kb.deleteIf('k', e3!.revision)]);
      expect(both.filter(Boolean)).toHaveLength(1);
      expect(await (both[0] ? ka : kb).get('k')).toBeUndefined();
    });

    it('stores and lists odd keys exactly, and refuses keys outside the alphabet', async () => {
      const { a, b } = pair();
      const bucket = freshBucket();
      const ka = a.bucket<string>(bucket);
      for (const k of ODD_KEYS) expect(await ka.create(k, `v:${k}`)).toBe(true);
      const kb = b.bucket<string>(bucket);
      for (const k of ODD_KEYS) expect(await kb.get(k)).toBe(`v:${k}`);
      expect((await kb.keys()).sort()).toEqual([...ODD_KEYS].sort());
      for (const bad of ['', 'a b', 'a*b', 'a>b', 'é', 'k'.repeat(1025)]) {
        await expect(async () => ka.get(bad)).rejects.toThrow(/invalid store key/);
        await expect(async () => ka.put(bad, 'x')).rejects.toThrow(/invalid store key/);
      }
    });

    it('pages keys in key order after a cursor', async () => {
      const { a } = pair();
      const kv = a.bucket<number>(freshBucket());
      const keys = ['m', 'a', 'z', 'b.c', 'b', 'y', 'c', 'x-1', 'x-0', 'q'];
      for (const [i, k] of keys.entries()) await kv.put(k, i);
      const sorted = [...keys].sort();
      const pages: string[][] = [];
      let after: string | undefined;
      for (;;) {
        const page = await kv.keysPage(after, 3);
        if (page.length === 0) break;
        pages.push(page);
        after = page[page.length - 1];
      }
      expect(pages.flat()).toEqual(sorted);
      expect(pages.every((p) => p.length <= 3)).toBe(true);
      expect(await kv.keysPage('b', 2)).toEqual(['b.c', 'c']);
      expect(await kv.keysPage('zz', 5)).toEqual([]);
      await kv.delete('c');
      expect(await kv.keysPage('b', 2)).toEqual(['b.c', 'm']);
    });

    it('lists keys while one is being deleted: the listing ends, without the deleted keys', async () => {
      const { a, b } = pair();
      const bucket = freshBucket();
      const ka = a.bucket<number>(bucket);
      const kb = b.bucket<number>(bucket);
      // A record deleted as a listing starts (a publisher's track record replaced): with
      // @nats-io/kv's keys() about 1 in 3 such listings waited 30 s for a heartbeat.
      for (let round = 0; round < 20; round++) {
        await ka.put(`gone-${round}`, round);
        // The delete lands while the listing sets up (0-2 ms in).
        const deleted = new Promise((r) => setTimeout(r, round % 3)).then(() => ka.delete(`gone-${round}`));
        const [listed] = await Promise.all([ka.keys(), deleted]);
        expect(listed.filter((k) => k !== `gone-${round}`)).toEqual([]);
      }
      for (const k of ['kept-1', 'kept-2']) await kb.put(k, 1);
      expect((await ka.keys()).sort()).toEqual(['kept-1', 'kept-2']);
    });

    it('gives exactly one winner to two creates of the same key at the same instant', async () => {
      const { a, b } = pair();
      const bucket = freshBucket();
      const ka = a.bucket<string>(bucket);
      const kb = b.bucket<string>(bucket);
      // The first round also races the two handles creating the bucket itself.
      for (let round = 0; round < 20; round++) {
        const key = `name-${round}`;
        const [wa, wb] = await Promise.all([ka.create(key, 'A'), kb.create(key, 'B')]);
        expect([wa, wb].filter(Boolean)).toHaveLength(1);
        const winner = wa ? 'A' : 'B';
        expect(await ka.get(key)).toBe(winner);
        expect(await kb.get(key)).toBe(winner);
      }
      // And again on a deleted key.
      await ka.delete('name-0');
      const again = await Promise.all([ka.create('name-0', 'A2'), kb.create('name-0', 'B2')]);
      expect(again.filter(Boolean)).toHaveLength(1);
    });

    it('gives exactly one winner to two updates on the same revision', async () => {
      const { a, b } = pair();
      const bucket = freshBucket();
      const ka = a.bucket<number>(bucket);
      const kb = b.bucket<number>(bucket);
      await ka.put('counter', 0);
      for (let round = 0; round < 20; round++) {
        const [ea, eb] = await Promise.all([ka.entry('counter'), kb.entry('counter')]);
        expect(ea!.revision).toBe(eb!.revision);
        const [wa, wb] = await Promise.all([
          ka.update('counter', ea!.value + 1, ea!.revision),
          kb.update('counter', eb!.value + 1, eb!.revision),
        ]);
        expect([wa, wb].filter(Boolean)).toHaveLength(1);
      }
      expect(await ka.get('counter')).toBe(20);
    });
  });
}

const lmdbDir = mkdtempSync(join(tmpdir(), 'chorus-store-contract-'));
const lmdbA = new LmdbStore(lmdbDir);
const lmdbB = new LmdbStore(lmdbDir);
afterAll(async () => {
  await lmdbA.close();
  await lmdbB.close();
  rmSync(lmdbDir, { recursive: true, force: true });
});
storeContract('LmdbStore', () => ({ a: lmdbA, b: lmdbB }));

describe('KV names', () => {
  it('maps keys KV rejects reversibly and leaves the others as they are', () => {
    expect(encodeKvKey('alice')).toBe('alice');
    expect(encodeKvKey('a.b')).toBe('a.b');
    expect(encodeKvKey('.a..b=')).toBe('=2Ea=2E=2Eb=3D');
    for (const k of ODD_KEYS) {
      const stored = encodeKvKey(k);
      expect(stored).toMatch(/^[-/=\w]+(\.[-/=\w]+)*$/); // no empty token, no edge dot
      expect(decodeKvKey(stored)).toBe(k);
    }
    expect(kvBucketName('rooms-bluesky')).toBe('chorus_rooms-bluesky');
    expect(kvBucketName('a_b')).toBe('chorus_a_5fb');
    expect(kvBucketName('a_5fb')).toBe('chorus_a_5f5fb');
    expect(kvBucketName('a.b')).toMatch(/^[-\w]+$/);
  });
});

describe.runIf(hasTool('nats-server', 'nats-server'))('KvStore', () => {
  const nats = new NatsServerProcess({ jetstream: true });
  const links: NatsLink[] = [];
  let a: KvStore;
  let b: KvStore;

  beforeAll(async () => {
    await nats.start();
    for (const nodeId of ['store-a', 'store-b']) {
      links.push(await NatsLink.open({ servers: [nats.url], nodeId, connectTimeoutMs: 10_000, log }));
    }
    // The contract is about outcomes (one winner), not speed: on a loaded 2-core CI box
    // two handles racing to create a file-backed bucket once took over the 5 s the
    // server uses, so the test's stores wait longer before calling NATS unavailable.
    a = new KvStore(links[0]!, { replicas: 1, timeoutMs: 20_000 });
    b = new KvStore(links[1]!, { replicas: 1, timeoutMs: 20_000 });
  });

  afterAll(async () => {
    for (const l of links) await l.close();
    await nats.dispose();
  });

  storeContract('KvStore (two connections)', () => ({ a, b }));

  describe('while NATS is down', () => {
    it('refuses at once with PortUnavailableError, and keeps what was stored across the restart', async () => {
      const kv = a.bucket<string>(freshBucket());
      await kv.put('kept', 'yes');
      await nats.stop();
      await eventually(() => !links[0]!.connected, 10_000, 'the link to see the loss');
      for (const op of [
        () => kv.get('kept'),
        () => kv.put('x', 'y'),
        () => kv.create('x', 'y'),
        () => kv.keys(),
      ]) {
        const err = await within(
          op().then(
            () => undefined,
            (e: unknown) => e,
          ),
          1000,
          'a prompt refusal',
        );
        expect(err).toBeInstanceOf(PortUnavailableError);
        expect((err as PortUnavailableError).port).toBe('store');
      }
      await nats.start();
      await eventually(() => links.every((l) => l.connected), 20_000, 'both links to reconnect');
      // JetStream recovers its streams a moment after the server accepts connections.
      const once = async <T>(op: () => Promise<T>, want: (v: T) => boolean): Promise<boolean> => {
        try {
          return want(await op());
        } catch (err) {
          if (err instanceof PortUnavailableError) return false;
          throw err;
        }
      };
      await eventually(
        () =>
          once(
            () => kv.get('kept'),
            (v) => v === 'yes',
          ),
        30_000,
        'the value after the restart',
      );
      // A bucket first used after the restart is created then, from the other connection.
      const late = b.bucket<string>('late-' + freshBucket());
      await eventually(
        () =>
          once(
            () => late.put('k', 'v').then(() => true),
            (v) => v,
          ),
        30_000,
        'a new bucket after the restart',
      );
      expect(await late.get('k')).toBe('v');
    });
  });
});
