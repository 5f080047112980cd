import { randomBytes } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { subjectToken, type Bus, type BusSubscription } from '../ports/bus/bus.js';
import type { KvBucket, Store } from '../ports/store/store.js';
import { ThrottledLog } from '../lib/throttled-log.js';
import { asRoomId, type RoomId } from './room.js';
import type { UserId } from './ids.js';
import { SWEEP_BATCH } from './identity-registry.js';
import { busObject } from '../lib/bus-object.js';

/** A room id as the directory makes them (base64url); anything else names no room. */
const ROOM_ID = /^[-_A-Za-z0-9]{1,64}$/;
const REASON = /^[ -~]{1,64}$/;
/** Store reads a room listing keeps in flight at once. */
const LIST_READS = 32;

/** A room closed (or expired) somewhere in the cluster: every node ends its live state. */
export interface RoomClosed {
  id: string;
  reason: string;
}

/** A `closed` event off the bus (untrusted), or undefined when it is not one. */
function parseClosed(data: Uint8Array): RoomClosed | undefined {
  const value = busObject(data, 512);
  if (!value) return undefined;
  const { id, reason } = value;
  if (typeof id !== 'string' || !ROOM_ID.test(id)) return undefined;
  if (typeof reason !== 'string' || !REASON.test(reason)) return undefined;
  return { id, reason };
}

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
 * rooms outlive a restart and any node serves any room; live participants and media are
 * in Room and the SFU, on each node that has some. Closing or expiring a room is
 * announced on `chorus.<ns>.room.<id>.closed`, which every node acts on.
 */
export class RoomDirectory {
  private readonly bucket: KvBucket<RoomRecord>;
  private readonly badInput: ThrottledLog;

  constructor(
    store: Store,
    private readonly bus: Bus,
    private readonly namespace: string,
    private readonly log: Logger,
  ) {
    this.bucket = store.bucket<RoomRecord>(`rooms-${namespace}`);
    this.badInput = new ThrottledLog(log, 5);
  }

  /**
   * Calls `listener` for every room closed or expired on any node (this one included).
   * A malformed event is logged (throttled) and dropped.
   */
  onClosed(listener: (event: RoomClosed) => void): BusSubscription {
    return this.bus.subscribe(`chorus.${this.namespace}.room.*.closed`, (msg) => {
      const event = parseClosed(msg.data);
      // The subject names the room too: both must agree, or the event is not one.
      if (!event || msg.subject !== this.closedSubject(event.id)) {
        this.badInput.warn(
          { subject: msg.subject, bytes: msg.data.length },
          'room directory: malformed closed event dropped',
        );
        return;
      }
      try {
        listener(event);
      } catch (err) {
        this.log.error({ err, room: event.id }, 'room directory: closed listener threw');
      }
    });
  }

  private closedSubject(id: string): string {
    return `chorus.${this.namespace}.room.${subjectToken(id)}.closed`;
  }

  private announceClosed(id: string, reason: string): void {
    this.bus.publish(this.closedSubject(id), JSON.stringify({ id, reason } satisfies RoomClosed));
  }

  async create(admin: UserId): Promise<RoomRecord> {
    for (;;) {
      const id = randomBytes(9).toString('base64url');
      const record: RoomRecord = { id, admin, createdAt: Date.now(), open: true };
      if (await this.bucket.create(id, record)) return record;
    }
  }

  async get(id: string): Promise<RoomRecord | undefined> {
    if (!ROOM_ID.test(id)) return undefined;
    return this.bucket.get(id);
  }

  /**
   * The open rooms' ids, in key order. Records are read LIST_READS at a time: one after
   * another, a cluster's store round trips add up with the number of rooms (each a NATS
   * request, slow on a loaded node); all at once, a large directory would flood the store.
   */
  async listOpen(): Promise<RoomId[]> {
    const keys = await this.bucket.keys();
    const out: RoomId[] = [];
    for (let i = 0; i < keys.length; i += LIST_READS) {
      const records = await Promise.all(keys.slice(i, i + LIST_READS).map((k) => this.bucket.get(k)));
      for (const r of records) if (r?.open) out.push(asRoomId(r.id));
    }
    return out;
  }

  /** Marks the room closed and tells every node, whose live rooms close with it. */
  async close(id: string, reason = 'room closed'): Promise<void> {
    const r = await this.bucket.get(id);
    if (r) await this.bucket.put(id, { ...r, open: false });
    this.announceClosed(id, reason);
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
   * says have someone publishing on this node (nodes keep the rooms they carry fresh with
   * `touch`), and tells every node. Walks the store in batches, yielding between them;
   * stops early once `active()` is false. Returns the ids deleted.
   *
   * Several nodes may sweep at once: a room is deleted only if its record is still the
   * one judged (a compare-and-set on its revision first), so a sweep that read a stale
   * record never deletes a room touched meanwhile.
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
        const found = await this.bucket.entry(key);
        if (!found || (found.value.lastUsedAt ?? found.value.createdAt) >= before || inUse(key)) continue;
        // Only the record judged: one used or written again since stays.
        if (!(await this.bucket.deleteIf(key, found.revision))) continue;
        this.announceClosed(key, 'room expired');
        removed.push(key);
      }
      if (keys.length < SWEEP_BATCH) break;
      after = keys[keys.length - 1];
      await yieldToLoop();
    }
    return removed;
  }
}
