import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KvBucket, Store } from '../ports/store/store.js';

interface SecretRecord {
  /** SHA-256 of the secret, hex: the secret itself is never stored. */
  hash: string;
  createdAt: number;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** A store key for a user id, whatever its characters (the KV alphabet is narrow). */
const userKey = (user: string): string => digest(user).toString('hex');

/**
 * The secrets of rooms whose owners asked for them: one admin key per room and one key
 * per participant (user id) that joined it. Kept in the store (hashed) so that any node
 * of a cluster checks them, and a user id is claimed once per room: the store's
 * create-if-absent makes one winner when two clients race for it.
 */
export class RoomSecrets {
  private readonly bucket: KvBucket<SecretRecord>;

  constructor(store: Store, namespace: string) {
    this.bucket = store.bucket<SecretRecord>(`room-secrets-${namespace}`);
  }

  private async issue(key: string): Promise<string | undefined> {
    const secret = randomBytes(24).toString('base64url');
    const record: SecretRecord = { hash: digest(secret).toString('hex'), createdAt: Date.now() };
    return (await this.bucket.create(key, record)) ? secret : undefined;
  }

  private async check(key: string, secret: string | undefined): Promise<boolean> {
    if (!secret) return false;
    const record = await this.bucket.get(key);
    if (!record) return false;
    const want = Buffer.from(record.hash, 'hex');
    const got = digest(secret);
    return want.length === got.length && timingSafeEqual(want, got);
  }

  /** A new room's admin key, returned once; undefined if the room already has one. */
  issueAdminKey(room: string): Promise<string | undefined> {
    return this.issue(`${room}/admin`);
  }

  checkAdminKey(room: string, secret: string | undefined): Promise<boolean> {
    return this.check(`${room}/admin`, secret);
  }

  /** Claims `user` in `room`: its key, returned once; undefined when someone already has it. */
  claimParticipant(room: string, user: string): Promise<string | undefined> {
    return this.issue(`${room}/p/${userKey(user)}`);
  }

  checkParticipant(room: string, user: string, secret: string | undefined): Promise<boolean> {
    return this.check(`${room}/p/${userKey(user)}`, secret);
  }

  /**
   * Forgets a closed or expired room's secrets. Its keys sort together just after
   * `<room>/`, so only they are read, a page at a time (the expiry sweep calls this for
   * every room it deletes).
   */
  async forget(room: string): Promise<void> {
    const prefix = `${room}/`;
    for (;;) {
      const keys = (await this.bucket.keysPage(prefix, 256)).filter((k) => k.startsWith(prefix));
      if (keys.length === 0) return;
      for (const k of keys) await this.bucket.delete(k);
    }
  }
}
