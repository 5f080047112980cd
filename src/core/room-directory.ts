import { randomBytes } from 'node:crypto';
import type { KvBucket, Store } from '../ports/store/store.js';
import { asRoomId, type RoomId } from './room.js';
import type { UserId } from './ids.js';

export interface RoomRecord {
  id: string;
  admin: string;
  createdAt: number;
  open: boolean;
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
}
