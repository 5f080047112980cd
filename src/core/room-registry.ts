import type { Logger } from 'pino';
import { ChorusError } from './errors.js';
import { Room } from './room.js';
import type { CloseReason, RoomId, RoomKind, RoomOptions, RoomRegistryObserverEvents } from './room-types.js';
import { TypedEmitter } from '../lib/typed-emitter.js';

const keyOf = (kind: RoomKind, id: string): string => `${kind}\u0000${id}`;

/**
 * The rooms of every kind live on this node: Blue Sky conferences, VOIP calls and group
 * rooms, Beep conversations. Ids are unique per kind. A room leaves the registry when it
 * closes (by itself when empty, or when told).
 */
export class RoomRegistry {
  readonly observer: TypedEmitter<RoomRegistryObserverEvents>;
  private readonly rooms = new Map<string, Room>();

  constructor(private readonly log: Logger) {
    this.observer = new TypedEmitter<RoomRegistryObserverEvents>(log);
  }

  get<M = unknown>(kind: RoomKind, id: string): Room<M> | undefined {
    return this.rooms.get(keyOf(kind, id)) as Room<M> | undefined;
  }

  /** The open room `id` of `options.kind`, created if there is none. */
  open<M>(id: RoomId, options: RoomOptions<M>): Room<M> {
    return this.get<M>(options.kind, id) ?? this.create(id, options);
  }

  /** A new room; ChorusError `conflict` when one of that kind and id is open. */
  create<M>(id: RoomId, options: RoomOptions<M>): Room<M> {
    const key = keyOf(options.kind, id);
    if (this.rooms.has(key)) {
      throw new ChorusError('conflict', `${options.kind} ${id} exists`, { room: id });
    }
    const room = new Room<M>(id, options, this.log.child({ room: id, kind: options.kind }), () => {
      if (this.rooms.get(key) === room) this.rooms.delete(key);
    });
    this.rooms.set(key, room);
    this.observer.emit('newroom', { room });
    return room;
  }

  /** Open rooms of one kind, oldest first. */
  list<M = unknown>(kind: RoomKind): Room<M>[] {
    const out: Room<M>[] = [];
    for (const r of this.rooms.values()) if (r.kind === kind) out.push(r as Room<M>);
    return out;
  }

  count(kind?: RoomKind): number {
    if (kind === undefined) return this.rooms.size;
    let n = 0;
    for (const r of this.rooms.values()) if (r.kind === kind) n++;
    return n;
  }

  /** Closes the room if open (its cascade runs; then it is forgotten). */
  close(kind: RoomKind, id: string, reason: CloseReason = 'closed'): void {
    this.get(kind, id)?.close(reason);
  }

  /** Closes every room (of one kind, or all): on shutdown. */
  closeAll(reason: CloseReason, kind?: RoomKind): void {
    for (const r of [...this.rooms.values()]) if (kind === undefined || r.kind === kind) r.close(reason);
  }

  get size(): number {
    return this.rooms.size;
  }
}
