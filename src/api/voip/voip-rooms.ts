import type { Logger } from 'pino';
import { ChorusError } from '../../core/errors.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import { asRoomId } from '../../core/room-types.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import type { Store } from '../../ports/store/store.js';
import type { MediaRelay } from './media-relay.js';
import { MediaGroup } from './media-group.js';
import type { RemoteGroup } from './remote-group.js';
import { RoomRecords, sameNode, type RoomRecord } from './room-records.js';
import type { NodeRef, VoipNode } from './voip-node.js';
import type { RoomSummary } from './voip-wire.js';

/** What names a group room: its id, and its name (standalone mode). */
export interface RoomRef {
  readonly id: number;
  readonly name: string;
}

export interface VoipRoom extends RoomRef {
  readonly group: MediaGroup;
}

/** A room another node mixes, reached through the media relay. */
export interface RemoteRoom extends RoomRef {
  readonly group: RemoteGroup;
}

/** What a VOIP group room carries in the model. */
interface GroupNames {
  id: number;
  name: string;
}

export interface VoipRoomsOptions {
  registry: RoomRegistry;
  audio: AudioHub;
  store: Store;
  node: VoipNode;
  /** Serves the mixers of the rooms held here to the other nodes, and reaches theirs. */
  relay: MediaRelay;
  /** Rooms this node holds at most. */
  maxRooms: number;
  maxMembers: number;
  onMemberChange(room: VoipRoom, id: string, mic: boolean, hds: boolean): void;
  onCreate(room: VoipRoom): void;
  log: Logger;
}

/** Where a room key leads: the id it has (or is given now), or the node holding it. */
export type RoomPlace = { id: number; owner?: undefined } | { id: number; owner: NodeRef; name: string };

const OPEN_ATTEMPTS = 3;

/**
 * Group rooms (kind `group` in the room registry). Side-site mode names rooms by the
 * site's integer ids; standalone mode by name (3 characters or more), giving each new
 * name the next id from 2 up as the original did. A room exists while anyone is in it
 * (it closes when empty, and its mixer stops with it).
 *
 * Across nodes: a room's mixer is held by one node, the first whose compare-and-set
 * claim on its record (RoomRecords) won; the record names that node and lists the
 * members, so every node lists it and its members, and a name gets one id
 * cluster-wide. Streams on other nodes reach the mixer through the media relay
 * (`open` answers a RemoteRoom). When the holder dies its record is dropped (nodeGone,
 * or a node finding nobody answering for it) and the next stream opens it anew.
 */
export class VoipRooms {
  private readonly byId = new Map<number, VoipRoom>();
  private readonly byName = new Map<string, VoipRoom>();
  private readonly records: RoomRecords;
  /** Per room, this node's record writes in order. */
  private readonly writes = new Map<number, Promise<void>>();
  /** Rooms whose record save is queued and not started: later changes ride along. */
  private readonly saveQueued = new Set<VoipRoom>();
  /** Each room's claim on its record: whether this node holds it. */
  private readonly claims = new WeakMap<VoipRoom, Promise<boolean>>();

  constructor(private readonly opts: VoipRoomsOptions) {
    this.records = new RoomRecords(opts.store);
    opts.node.onNodeGone((node) => void this.ownerGone(node));
  }

  /** The room held by this node. */
  find(key: number | string): VoipRoom | undefined {
    return typeof key === 'number' ? this.byId.get(key) : this.byName.get(key);
  }

  /**
   * Where `key`'s room is: here or nowhere yet (its id, a standalone name given one
   * now), or held by another live node.
   */
  async place(key: number | string): Promise<RoomPlace> {
    const local = this.find(key);
    if (local) return { id: local.id };
    const id = typeof key === 'number' ? key : (await this.records.idOfName(key, true))!;
    const rec = await this.records.get(id);
    if (rec && this.heldElsewhere(rec)) return { id, owner: rec.owner, name: rec.name };
    return { id };
  }

  /**
   * `key`'s room for a stream: held here (opened now if nobody holds it, once this
   * node's claim on its record won) or by another node (a RemoteRoom).
   */
  async open(key: number | string): Promise<{ room: VoipRoom } | { remote: RemoteRoom }> {
    for (let attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
      const place = await this.place(key);
      if (place.owner) {
        const group = this.opts.relay.remote({ kind: 'room', id: String(place.id) }, place.owner);
        return { remote: { id: place.id, name: place.name, group } };
      }
      const room = this.grab(key, place.id);
      if (!room) throw new ChorusError('capacity', 'too many rooms');
      // Lost to another node's claim: the next round finds that node in the record.
      if (await (this.claims.get(room) ?? true)) return { room };
    }
    throw new ChorusError('unavailable', 'room changing nodes, try again');
  }

  /** Drops the record of a room whose holder does not answer for it (dead, or closed it). */
  forgetHolder(id: number, owner: NodeRef): Promise<void> {
    this.opts.log.info({ room: id, owner: owner.id }, 'voip room: its node does not hold it, record dropped');
    return this.records.drop(id, owner);
  }

  /**
   * The room held here, opened if new (with the id `place` gave); undefined when this
   * node holds its room limit. A room opened here claims its record; if another node
   * claimed it first, this one closes again (its streams end).
   */
  grab(key: number | string, id: number): VoipRoom | undefined {
    const found = this.find(key);
    if (found) return found;
    if (this.byId.size >= this.opts.maxRooms) return undefined;
    const name = typeof key === 'number' ? 'my room' : key;
    const model = this.opts.registry.create<GroupNames>(asRoomId(String(id)), {
      kind: 'group',
      capacity: this.opts.maxMembers,
      closeWhenEmpty: true,
      leaveWhenIdle: true,
      metadata: { id, name },
    });
    const room: VoipRoom = {
      id,
      name,
      group: new MediaGroup(model, this.opts.audio, (member, mic, hds) => {
        this.saveSoon(room);
        this.opts.onMemberChange(room, member, mic, hds);
      }),
    };
    model.events.on('close', () => this.forget(room));
    this.byId.set(id, room);
    if (typeof key === 'string') this.byName.set(key, room);
    // Served on the bus before the record names this node: whoever reads it can ask.
    this.opts.relay.host({ kind: 'room', id: String(id) }, room.group);
    this.claims.set(room, this.claim(room, typeof key === 'string'));
    this.opts.onCreate(room);
    return room;
  }

  /** Drops a room nobody joined after all (a refused first member). */
  removeIfEmpty(room: VoipRoom): void {
    if (room.group.size === 0) room.group.closeAll('empty');
  }

  /** Every room of the cluster, by id. */
  async list(): Promise<RoomSummary[]> {
    const out = new Map<number, RoomSummary>();
    for await (const rec of this.records.all()) {
      if (!this.heldElsewhere(rec)) continue;
      out.set(rec.id, { ...summaryBase(rec.id, rec.name), count: rec.members.length });
    }
    for (const r of this.byId.values()) out.set(r.id, this.summary(r));
    return [...out.values()].sort((a, b) => a.id - b.id);
  }

  /** The members of `key`'s room, wherever it is; undefined when there is no such room. */
  async members(key: number | string): Promise<RoomRecord['members'] | undefined> {
    const local = this.find(key);
    if (local) return local.group.list();
    const id = typeof key === 'number' ? key : await this.records.idOfName(key, false);
    const rec = id === undefined ? undefined : await this.records.get(id);
    return rec && this.heldElsewhere(rec) ? rec.members : undefined;
  }

  summary(r: VoipRoom): RoomSummary {
    return { ...summaryBase(r.id, r.name), count: r.group.size };
  }

  get size(): number {
    return this.byId.size;
  }

  /** Closes this node's rooms and waits for their records to go. */
  async closeAll(): Promise<void> {
    for (const r of [...this.byId.values()]) r.group.closeAll('shutdown');
    await Promise.allSettled([...this.writes.values()]);
  }

  private heldElsewhere(rec: RoomRecord): boolean {
    return !sameNode(rec.owner, this.opts.node.self) && this.opts.node.isAlive(rec.owner.id);
  }

  private recordOf(room: VoipRoom): RoomRecord {
    return { id: room.id, name: room.name, owner: this.opts.node.self, members: room.group.list() };
  }

  /** Claims the room's record for this node; if another node holds it, closes it here. */
  private claim(room: VoipRoom, named: boolean): Promise<boolean> {
    return new Promise((resolve) =>
      this.write(room, async () => {
        let ok = false;
        try {
          const live = (owner: RoomRecord['owner']) => this.opts.node.isAlive(owner.id);
          ok = await this.records.claim(this.recordOf(room), named, live);
        } finally {
          if (!ok) {
            this.opts.log.info({ room: room.id }, 'voip room held by another node: closed here');
            room.group.closeAll('taken');
          }
          resolve(ok);
        }
      }),
    );
  }

  /**
   * Saves the room's record after its earlier writes, unless a save is queued already:
   * that one writes the state as it is when it runs. The record lists every member, so
   * a save per join would make filling a room O(members²) (#17.3).
   */
  private saveSoon(room: VoipRoom): void {
    if (this.saveQueued.has(room)) return;
    this.saveQueued.add(room);
    this.write(room, () => {
      this.saveQueued.delete(room);
      return this.records.save(this.recordOf(room));
    });
  }

  /** Runs `op` after the room's earlier writes; a failure is logged. */
  private write(room: VoipRoom, op: () => Promise<void>): void {
    const next = (this.writes.get(room.id) ?? Promise.resolve())
      .then(op)
      .catch((err: unknown) => this.opts.log.warn({ err, room: room.id }, 'voip: room record not written'));
    this.writes.set(room.id, next);
    void next.finally(() => {
      if (this.writes.get(room.id) === next) this.writes.delete(room.id);
    });
  }

  private forget(room: VoipRoom): void {
    if (this.byId.get(room.id) === room) this.byId.delete(room.id);
    if (this.byName.get(room.name) === room) this.byName.delete(room.name);
    this.write(room, () => this.records.drop(room.id, this.opts.node.self));
  }

  private async ownerGone(node: RoomRecord['owner']): Promise<void> {
    try {
      for await (const rec of this.records.all())
        if (sameNode(rec.owner, node)) await this.records.drop(rec.id, node);
    } catch (err) {
      this.opts.log.warn({ err, node: node.id }, 'voip: rooms of a gone node not all forgotten');
    }
  }
}

function summaryBase(id: number, name: string): Omit<RoomSummary, 'count'> {
  return { id, name, type: 'no type', desc: 'no desc' };
}
