/**
 * The store port: durable key/value buckets of JSON-like records. Shaped after NATS
 * JetStream KV (get, put, create-if-absent, delete, keys) so the cluster implementation
 * maps one call to one KV operation. Keys use the KV alphabet: `[-/_=.A-Za-z0-9]`.
 */
/**
 * Opaque version of one key's value, from `entry`; handed back to `update` to write only
 * if nobody wrote the key since. JetStream KV: the entry's revision (stream sequence);
 * LMDB: a digest of the stored bytes.
 */
export type Revision = string & { readonly __revision: unique symbol };

export interface KvEntry<T> {
  value: T;
  revision: Revision;
}

export interface KvBucket<T> {
  get(key: string): Promise<T | undefined>;
  /** The value with its revision, for a compare-and-set `update`. */
  entry(key: string): Promise<KvEntry<T> | undefined>;
  /**
   * Writes `value` only if the key still has `revision` (nobody wrote it since `entry`);
   * true when written. Two writers racing on one revision: exactly one wins.
   */
  update(key: string, value: T, revision: Revision): Promise<boolean>;
  put(key: string, value: T): Promise<void>;
  /** Stores the value only if the key is absent; true when it was stored. */
  create(key: string, value: T): Promise<boolean>;
  delete(key: string): Promise<void>;
  /**
   * Deletes the key only if it still has `revision` (nobody wrote it since `entry`); true
   * when deleted. For removals judged on what was read: a record written again in between
   * is kept, where a read then `delete` would drop it.
   */
  deleteIf(key: string, revision: Revision): Promise<boolean>;
  keys(): Promise<string[]>;
  /** Up to `limit` keys in key order, after `after` (from the start when undefined): for sweeps in bounded batches. */
  keysPage(after: string | undefined, limit: number): Promise<string[]>;
}

export interface Store {
  bucket<T>(name: string): KvBucket<T>;
  close(): Promise<void>;
}

const KEY = /^[-/_=.A-Za-z0-9]{1,1024}$/;

export function assertKey(key: string): void {
  if (!KEY.test(key)) throw new Error(`invalid store key ${JSON.stringify(key)}`);
}
