import { jetstream, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsLink } from '../nats/nats-link.js';
import { isUnreachable, isWrongRevision } from '../nats/nats-errors.js';
import { decodeKvKey, encodeKvKey, kvBucketName } from './kv-names.js';
import { listKvKeys } from './kv-key-listing.js';
import { assertKey, type KvBucket, type KvEntry, type Revision, type Store } from './store.js';

export interface KvStoreOptions {
  /** Copies of each bucket in a NATS cluster (`CLUSTER_KV_REPLICAS`); 1 on a single server. */
  replicas: number;
  /** Bound of every KV call; past it the call fails with PortUnavailableError. */
  timeoutMs: number;
}

/**
 * The cluster's store: JetStream KV over the process's NatsLink. One KV bucket per store
 * bucket (names and keys mapped as `kv-names.ts` says), file storage, history 1, values
 * JSON. Buckets are opened on first use and created when missing; two nodes creating the
 * same one at once both end up with it (JetStream accepts an identical stream twice).
 * `create` and `update` are JetStream's expected-last-sequence writes, so of two nodes
 * racing exactly one wins; the revision is the entry's stream sequence.
 *
 * Every call runs through `NatsLink.guard`: refused at once while NATS is down, bounded by
 * `timeoutMs` otherwise. `keys` and `keysPage` walk every key of the bucket (KV has no
 * ordered paging): a page costs one pass over the bucket's keys, sorted in memory.
 */
/**
 * A bucket's stream that JetStream has only just created may not answer its first writes
 * yet ("no responders", reported as JetStream not enabled): such a write was not applied,
 * so it is tried again, briefly (seen on a loaded CI box: two creates right after the
 * bucket was made). Still bounded by the link's timeout; a NATS without JetStream fails
 * after these waits.
 */
const NOT_READY_RETRY_MS = [50, 200, 500];
function streamNotReady(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'JetStreamNotEnabled' || /no responders/i.test(err.message);
}

export class KvStore implements Store {
  private readonly js: JetStreamClient;
  private readonly kvm: Kvm;
  private readonly buckets = new Map<string, KvStoreBucket<unknown>>();

  constructor(
    private readonly link: NatsLink,
    private readonly opts: KvStoreOptions,
  ) {
    this.js = jetstream(link.nc, { timeout: opts.timeoutMs });
    this.kvm = new Kvm(this.js);
  }

  bucket<T>(name: string): KvBucket<T> {
    let b = this.buckets.get(name);
    if (!b) {
      b = new KvStoreBucket<unknown>(
        name,
        () => this.openKv(name),
        () => listKvKeys(this.js, kvBucketName(name)),
        this.link,
        this.opts.timeoutMs,
      );
      this.buckets.set(name, b);
    }
    return b as KvBucket<T>;
  }

  /** Nothing of its own to close: the connection is the link's. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  private async openKv(name: string): Promise<KV> {
    const opts = {
      history: 1,
      replicas: this.opts.replicas,
      storage: StorageType.File,
      timeout: this.opts.timeoutMs,
    };
    try {
      return await this.kvm.create(kvBucketName(name), opts);
    } catch (err) {
      if (isUnreachable(err)) throw err;
      // Another node created it between our lookup and our create: it exists now.
      return this.kvm.create(kvBucketName(name), opts);
    }
  }
}

const encoder = new TextEncoder();

class KvStoreBucket<T> implements KvBucket<T> {
  private kv: Promise<KV> | undefined;

  constructor(
    private readonly name: string,
    private readonly openKv: () => Promise<KV>,
    /** The bucket's keys as stored (encoded); see kv-key-listing.ts for why not `kv.keys()`. */
    private readonly listKeys: () => Promise<string[]>,
    private readonly link: NatsLink,
    private readonly timeoutMs: number,
  ) {}

  get(key: string): Promise<T | undefined> {
    return this.entry(key).then((e) => e?.value);
  }

  entry(key: string): Promise<KvEntry<T> | undefined> {
    assertKey(key);
    return this.run('a store read', async (kv) => {
      const e = await kv.get(encodeKvKey(key));
      if (!e || e.operation !== 'PUT') return undefined;
      return { value: e.json<T>(), revision: String(e.revision) as Revision };
    });
  }

  update(key: string, value: T, revision: Revision): Promise<boolean> {
    assertKey(key);
    const seq = Number(revision);
    if (!Number.isSafeInteger(seq) || seq <= 0) return Promise.resolve(false);
    return this.run('a store update', async (kv) => {
      try {
        await kv.update(encodeKvKey(key), json(value), seq);
        return true;
      } catch (err) {
        if (isWrongRevision(err)) return false;
        throw err;
      }
    });
  }

  put(key: string, value: T): Promise<void> {
    assertKey(key);
    return this.run('a store write', async (kv) => {
      await kv.put(encodeKvKey(key), json(value));
    });
  }

  create(key: string, value: T): Promise<boolean> {
    assertKey(key);
    return this.run('a store create', async (kv) => {
      try {
        await kv.create(encodeKvKey(key), json(value));
        return true;
      } catch (err) {
        if (isWrongRevision(err)) return false;
        throw err;
      }
    });
  }

  delete(key: string): Promise<void> {
    assertKey(key);
    return this.run('a store delete', async (kv) => {
      await kv.delete(encodeKvKey(key));
    });
  }

  deleteIf(key: string, revision: Revision): Promise<boolean> {
    assertKey(key);
    const seq = Number(revision);
    if (!Number.isSafeInteger(seq) || seq <= 0) return Promise.resolve(false);
    return this.run('a store conditional delete', async (kv) => {
      try {
        // The delete marker is written only if the key's last write is still `seq`.
        await kv.delete(encodeKvKey(key), { previousSeq: seq });
        return true;
      } catch (err) {
        if (isWrongRevision(err)) return false;
        throw err;
      }
    });
  }

  keys(): Promise<string[]> {
    // Opened first (run does): the bucket's stream is created on first use.
    return this.run('a store key listing', async () => (await this.listKeys()).map(decodeKvKey));
  }

  async keysPage(after: string | undefined, limit: number): Promise<string[]> {
    const all = (await this.keys()).sort();
    const from = after === undefined ? 0 : all.findIndex((k) => k > after);
    return from < 0 ? [] : all.slice(from, from + limit);
  }

  private run<R>(what: string, op: (kv: KV) => Promise<R>): Promise<R> {
    return this.link.guard(
      'store',
      `${what} (${this.name})`,
      async () => {
        const kv = await this.open();
        for (let attempt = 0; ; attempt++) {
          try {
            return await op(kv);
          } catch (err) {
            const wait = NOT_READY_RETRY_MS[attempt];
            if (wait === undefined || !streamNotReady(err)) throw err;
            await new Promise((r) => setTimeout(r, wait));
          }
        }
      },
      this.timeoutMs,
    );
  }

  private open(): Promise<KV> {
    this.kv ??= this.openKv().catch((err: unknown) => {
      this.kv = undefined; // try again on the next call
      throw err;
    });
    return this.kv;
  }
}

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}
