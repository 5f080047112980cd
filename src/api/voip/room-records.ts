import type { KvBucket, Store } from '../../ports/store/store.js';
import { storeKey } from './store-key.js';
import type { NodeRef } from './voip-node.js';

/** A group room as the cluster knows it: names, the node holding its mixer, its members. */
export interface RoomRecord {
  id: number;
  name: string;
  owner: NodeRef;
  members: { id: string; mic: boolean; hds: boolean }[];
}

type Value = RoomRecord | { id: number } | { last: number };

const PAGE = 256;
const ATTEMPTS = 5;
/** Standalone room ids start at 2, as the original's did. */
const FIRST_ID = 2;

/**
 * Group rooms in the store, one bucket: `id.<n>` the room's record, `name.<name>` the id
 * a standalone room name was given, `seq` the last id given. Names and ids are taken
 * with create-if-absent or compare-and-set, so two nodes opening the same new room at
 * once agree on one id and one owner.
 */
export class RoomRecords {
  private readonly bucket: KvBucket<Value>;

  constructor(store: Store) {
    this.bucket = store.bucket<Value>('voip-rooms');
  }

  get(id: number): Promise<RoomRecord | undefined> {
    return this.bucket.get(idKey(id)) as Promise<RoomRecord | undefined>;
  }

  /** The id standalone name `name` has, given now if it has none. */
  async idOfName(name: string, give: boolean): Promise<number | undefined> {
    const key = nameKey(name);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const found = (await this.bucket.get(key)) as { id: number } | undefined;
      if (found || !give) return found?.id;
      const id = await this.nextId();
      if (await this.bucket.create(key, { id })) return id;
    }
    throw new Error(`room name ${JSON.stringify(name)}: ${ATTEMPTS} writers raced`);
  }

  /**
   * Makes `rec` the room's record unless a live owner holds it (`live` says who is);
   * true when this node now owns it. A standalone room (`named`) must also hold its name:
   * if the name went to another id meanwhile (the room closed and opened again
   * elsewhere), this claim is given up.
   */
  async claim(rec: RoomRecord, named: boolean, live: (owner: NodeRef) => boolean): Promise<boolean> {
    if (!(await this.claimId(rec, live))) return false;
    if (!named || (await this.holdName(rec.name, rec.id))) return true;
    await this.drop(rec.id, rec.owner);
    return false;
  }

  private async claimId(rec: RoomRecord, live: (owner: NodeRef) => boolean): Promise<boolean> {
    const key = idKey(rec.id);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const e = await this.bucket.entry(key);
      if (!e) {
        if (await this.bucket.create(key, rec)) return true;
        continue;
      }
      const old = e.value as RoomRecord;
      if (!sameNode(old.owner, rec.owner) && live(old.owner)) return false;
      if (await this.bucket.update(key, rec, e.revision)) return true;
    }
    return false;
  }

  /** Whether `name` is `id`'s (written now if nobody has it). */
  private async holdName(name: string, id: number): Promise<boolean> {
    const key = nameKey(name);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const named = (await this.bucket.get(key)) as { id: number } | undefined;
      if (named) return named.id === id;
      if (await this.bucket.create(key, { id })) return true;
    }
    return false;
  }

  /** Writes the owner's current view (the owner is the record's only writer). */
  save(rec: RoomRecord): Promise<void> {
    return this.bucket.put(idKey(rec.id), rec);
  }

  /**
   * Removes the room's record if `owner` still holds it, and its name first, so a name
   * never points at a room gone (a node opening it meanwhile takes the name again).
   */
  async drop(id: number, owner: NodeRef): Promise<void> {
    const e = await this.bucket.entry(idKey(id));
    const rec = e?.value as RoomRecord | undefined;
    if (!e || !rec || !sameNode(rec.owner, owner)) return;
    const named = await this.bucket.entry(nameKey(rec.name));
    // Each delete only if still what was read: a node that took the room or its name
    // meanwhile keeps it.
    if ((named?.value as { id: number } | undefined)?.id === id) {
      await this.bucket.deleteIf(nameKey(rec.name), named!.revision);
    }
    await this.bucket.deleteIf(idKey(id), e.revision);
  }

  /** Every room record, a page of keys at a time. */
  async *all(): AsyncGenerator<RoomRecord> {
    let after: string | undefined = 'id.';
    for (;;) {
      const keys = await this.bucket.keysPage(after, PAGE);
      for (const k of keys) {
        if (!k.startsWith('id.')) return;
        const v = (await this.bucket.get(k)) as RoomRecord | undefined;
        if (v) yield v;
      }
      if (keys.length < PAGE) return;
      after = keys[keys.length - 1];
    }
  }

  private async nextId(): Promise<number> {
    for (let attempt = 0; attempt < ATTEMPTS * 2; attempt++) {
      const e = await this.bucket.entry('seq');
      const id = e ? (e.value as { last: number }).last + 1 : FIRST_ID;
      if (
        e
          ? await this.bucket.update('seq', { last: id }, e.revision)
          : await this.bucket.create('seq', { last: id })
      )
        return id;
    }
    throw new Error(`room ids: ${ATTEMPTS * 2} writers raced`);
  }
}

export function sameNode(a: NodeRef, b: NodeRef): boolean {
  return a.id === b.id && a.instance === b.instance;
}

const idKey = (id: number): string => `id.${id}`;
const nameKey = (name: string): string => `name.${storeKey(name)}`;
