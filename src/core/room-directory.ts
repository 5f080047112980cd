import { randomBytes } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { KvBucket, Store } from '../ports/store/store.js';
import { asRoomId, type RoomId } from './room.js';
import type { UserId } from './ids.js';
import { SWEEP_BATCH } from './identity-registry.js';

export interface RoomRecord {
  id: string;
  admin: string;
  createdAt: number;
  open: boolean;
  /** Last time someone joined (an SDP exchange); absent in records from before. */
  lastUsedAt?: number;
}

/**
 * Durable room records (who created a room, whether it is open), kept in the store so
 * rooms outlive a restart; live participants and media are in Room and the SFU.
 */
export class RoomDirectory {
  private readonly bucket: KvBucket<RoomRecord>;

  constructor(store: Store, namespace: string) {
    this.bucket = store.bucket<RoomRecord>(`rooms-${namespace}`);
  }

  async create(admin: UserId): Promise<RoomRecord> {
    for (;;) {
      const id = randomBytes(9).toString('base64url');
      const record: RoomRecord = { id, admin, createdAt: Date.now(), open: true };
      if (await this.bucket.create(id, record)) return record;
    }
  }

  async get(id: string): Promise<RoomRecord | undefined> {
    if (!/^[-_A-Za-z0-9]{1,64}$/.test(id)) return undefined;
    return this.bucket.get(id);
  }

  async listOpen(): Promise<RoomId[]> {
    const out: RoomId[] = [];
    for (const k of await this.bucket.keys()) {
      const r = await this.bucket.get(k);
      if (r?.open) out.push(asRoomId(r.id));
    }
    return out;
  }

  async close(id: string): Promise<void> {
    const r = await this.bucket.get(id);
    if (r) await this.bucket.put(id, { ...r, open: false });
  }

  /**
   * Marks an open room used now. The stamp is rewritten only when older than `everyMs`,
   * so a busy room costs one store write an interval, not one per join.
   */
  async touch(id: string, everyMs: number, now: number = Date.now()): Promise<void> {
    const r = await this.get(id);
    if (r?.open && now - (r.lastUsedAt ?? r.createdAt) >= everyMs) {
      await this.bucket.put(id, { ...r, lastUsedAt: now });
    }
  }

  /**
   * Deletes the rooms (open or closed) last used before `before`, except those `inUse`
   * says have someone in them now. Walks the store in batches, yielding between them;
   * stops early once `active()` is false. Returns the ids deleted.
   */
  async removeUnused(
    before: number,
    inUse: (id: string) => boolean,
    active: () => boolean,
  ): Promise<string[]> {
    const removed: string[] = [];
    let after: string | undefined;
    while (active()) {
      const keys = await this.bucket.keysPage(after, SWEEP_BATCH);
      for (const key of keys) {
        if (!active()) break;
        const r = await this.bucket.get(key);
        if (!r || (r.lastUsedAt ?? r.createdAt) >= before || inUse(key)) continue;
        await this.bucket.delete(key);
        removed.push(key);
      }
      if (keys.length < SWEEP_BATCH) break;
      after = keys[keys.length - 1];
      await yieldToLoop();
    }
    return removed;
  }
}
