import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { KvBucket, Store } from '../ports/store/store.js';
import type { UserId } from './ids.js';

export interface IdentityRecord {
  registeredAt: number;
  /** Last time the name was used (connect, session check); absent in records from before. */
  lastSeenAt?: number;
  /**
   * Sessions are bound to this registration (its `registeredAt`), so a session of an
   * expired registration does not open the same name registered again by someone else.
   * Absent in records from before expiry existed, whose sessions name only the user.
   */
  bound?: boolean;
}

/** Records read and judged per step of a sweep, before yielding to the event loop. */
export const SWEEP_BATCH = 256;

/**
 * Registered user names, kept in the store so they outlive a restart. A name belongs to
 * whoever registered it first; the check and the write are one atomic `create`.
 */
export class IdentityRegistry {
  private readonly bucket: KvBucket<IdentityRecord>;

  constructor(store: Store, namespace: string) {
    this.bucket = store.bucket<IdentityRecord>(`identities-${namespace}`);
  }

  /** True when the name was free and is now registered. */
  register(user: UserId, now: number = Date.now()): Promise<boolean> {
    return this.bucket.create(user, { registeredAt: now, lastSeenAt: now, bound: true });
  }

  async exists(user: UserId): Promise<boolean> {
    return (await this.bucket.get(user)) !== undefined;
  }

  get(user: UserId): Promise<IdentityRecord | undefined> {
    return this.bucket.get(user);
  }

  /**
   * Marks the name (whose `record` was just read) used now. The stamp is rewritten only
   * when older than `everyMs`, so a busy name costs one store write an interval, not one
   * per use.
   */
  async touch(
    user: UserId,
    record: IdentityRecord,
    everyMs: number,
    now: number = Date.now(),
  ): Promise<void> {
    if (now - (record.lastSeenAt ?? record.registeredAt) >= everyMs) {
      await this.bucket.put(user, { ...record, lastSeenAt: now });
    }
  }

  /**
   * Deletes the names last used before `before`, except those `inUse` says are held
   * right now (on any node). Walks the store in batches of SWEEP_BATCH, yielding between
   * them; stops early once `active()` is false. Returns how many were deleted.
   *
   * Several nodes may sweep at once: a name is deleted only if its record is still the
   * one judged (a compare-and-set on its revision first), so a sweep that read a stale
   * record never deletes the same name registered again, or used, meanwhile.
   */
  async removeUnused(
    before: number,
    inUse: (user: string) => Promise<boolean>,
    active: () => boolean,
  ): Promise<number> {
    let removed = 0;
    let after: string | undefined;
    while (active()) {
      const keys = await this.bucket.keysPage(after, SWEEP_BATCH);
      for (const key of keys) {
        if (!active()) break;
        const found = await this.bucket.entry(key);
        if (!found || (found.value.lastSeenAt ?? found.value.registeredAt) >= before) continue;
        if (await inUse(key)) continue;
        // Only the record judged: a registration or use written since keeps it.
        if (!(await this.bucket.deleteIf(key, found.revision))) continue;
        removed++;
      }
      if (keys.length < SWEEP_BATCH) break;
      after = keys[keys.length - 1];
      await yieldToLoop();
    }
    return removed;
  }
}
