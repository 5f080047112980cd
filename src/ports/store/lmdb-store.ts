import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { assertKey, type KvBucket, type KvEntry, type Revision, type Store } from './store.js';

/**
 * The embedded store: LMDB in the data directory. Chosen over SQLite because its
 * key/value model is the same as the cluster's JetStream KV (one interface, no SQL
 * layer to emulate), it is crash-safe (copy-on-write B-tree, synced commits), and it
 * installs from npm with a prebuilt binary (better-sqlite3 would compile on every CI run).
 */
export class LmdbStore implements Store {
  private readonly root: RootDatabase;
  private readonly buckets = new Map<string, LmdbBucket<unknown>>();
  private readonly state = { closing: false };

  constructor(dataDir: string) {
    try {
      mkdirSync(dataDir, { recursive: true });
      // noSubdir: false always: lmdb-js otherwise takes a path with an extension
      // (`/var/lib/chorus.d`) for the data file itself and fails with "Is a directory".
      // Paths without one already opened as directories, so their layout is unchanged.
      this.root = open({ path: dataDir, noSubdir: false, maxDbs: 64, encoding: 'msgpack' });
    } catch (err) {
      const reason = (err as Error).message;
      throw new Error(`cannot open the data directory ${JSON.stringify(dataDir)}: ${reason}`, { cause: err });
    }
  }

  bucket<T>(name: string): KvBucket<T> {
    let b = this.buckets.get(name);
    if (!b) {
      b = new LmdbBucket<unknown>(this.root.openDB({ name, encoding: 'msgpack' }), this.state);
      this.buckets.set(name, b);
    }
    return b as KvBucket<T>;
  }

  async close(): Promise<void> {
    // lmdb-js resets its read transaction on a 0 ms timer after a read; closing before
    // that timer runs makes it throw from the timer, an uncaught exception (seen when a
    // server stopped right after a read). Refuse new reads, let the timer run, then close.
    this.state.closing = true;
    await new Promise((resolve) => setTimeout(resolve, 1));
    await this.root.close();
  }
}

class LmdbBucket<T> implements KvBucket<T> {
  constructor(
    private readonly database: Database<T, string>,
    private readonly state: { readonly closing: boolean },
  ) {}

  /** The database, unless the store is closing (a read now would outlive it). */
  private get db(): Database<T, string> {
    if (this.state.closing) throw new Error('the store is closed');
    return this.database;
  }

  async get(key: string): Promise<T | undefined> {
    assertKey(key);
    // The value, not a promise of it: an async function that returns a promise settles
    // two microtasks later (every session check reads here, #17.1).
    return this.db.get(key);
  }

  async entry(key: string): Promise<KvEntry<T> | undefined> {
    assertKey(key);
    const bytes = this.db.getBinary(key);
    if (bytes === undefined) return Promise.resolve(undefined);
    return Promise.resolve({ value: this.db.get(key) as T, revision: digest(bytes) });
  }

  async update(key: string, value: T, revision: Revision): Promise<boolean> {
    assertKey(key);
    // Read, compare and write in one write transaction: no other writer in between.
    return this.db.transaction(() => {
      const bytes = this.db.getBinary(key);
      if (bytes === undefined || digest(bytes) !== revision) return false;
      void this.db.put(key, value);
      return true;
    });
  }

  async put(key: string, value: T): Promise<void> {
    assertKey(key);
    await this.db.put(key, value);
  }

  async create(key: string, value: T): Promise<boolean> {
    assertKey(key);
    // ifNoExists runs the write inside one transaction with the existence check.
    return this.db.ifNoExists(key, () => {
      void this.db.put(key, value);
    });
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    await this.db.remove(key);
  }

  async deleteIf(key: string, revision: Revision): Promise<boolean> {
    assertKey(key);
    return this.db.transaction(() => {
      const bytes = this.db.getBinary(key);
      if (bytes === undefined || digest(bytes) !== revision) return false;
      void this.db.remove(key);
      return true;
    });
  }

  async keys(): Promise<string[]> {
    return Promise.resolve(Array.from(this.db.getKeys()));
  }

  async keysPage(after: string | undefined, limit: number): Promise<string[]> {
    // `start` is inclusive: ask for one more and drop the cursor itself.
    const out = Array.from(
      this.db.getKeys(after === undefined ? { limit } : { start: after, limit: limit + 1 }),
    );
    return Promise.resolve(after !== undefined && out[0] === after ? out.slice(1) : out.slice(0, limit));
  }
}

/** LMDB has no per-key version here: the digest of the stored bytes stands for one. */
function digest(bytes: Uint8Array): Revision {
  return createHash('sha1').update(bytes).digest('base64url') as Revision;
}
