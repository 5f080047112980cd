import type { RoomRegistry } from '../../core/room-registry.js';
import { asRoomId } from '../../core/room-types.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import { MediaGroup } from './media-group.js';
import type { RoomSummary } from './voip-wire.js';

export interface VoipRoom {
  readonly id: number;
  readonly name: string;
  readonly group: MediaGroup;
}

/** What a VOIP group room carries in the model. */
interface GroupNames {
  id: number;
  name: string;
}

/**
 * Group rooms (kind `group` in the room registry). Side-site mode names rooms by the
 * site's integer ids; standalone mode by name (3 characters or more), giving each new
 * name the next id from 2 up as the original did. A room exists while anyone is in it
 * (it closes when empty, and its mixer stops with it).
 */
export class VoipRooms {
  private readonly byId = new Map<number, VoipRoom>();
  private readonly byName = new Map<string, VoipRoom>();
  private lastId = 1;

  constructor(
    private readonly registry: RoomRegistry,
    private readonly audio: AudioHub,
    private readonly maxRooms: number,
    private readonly maxMembers: number,
    private readonly onMemberChange: (room: VoipRoom, id: string, mic: boolean, hds: boolean) => void,
    private readonly onCreate: (room: VoipRoom) => void,
  ) {}

  find(key: number | string): VoipRoom | undefined {
    return typeof key === 'number' ? this.byId.get(key) : this.byName.get(key);
  }

  /** The room, created if new; undefined when the room limit is reached. */
  grab(key: number | string): VoipRoom | undefined {
    const found = this.find(key);
    if (found) return found;
    if (this.byId.size >= this.maxRooms) return undefined;
    const id = typeof key === 'number' ? key : ++this.lastId;
    const name = typeof key === 'number' ? 'my room' : key;
    const model = this.registry.create<GroupNames>(asRoomId(String(id)), {
      kind: 'group',
      capacity: this.maxMembers,
      closeWhenEmpty: true,
      leaveWhenIdle: true,
      metadata: { id, name },
    });
    const room: VoipRoom = {
      id,
      name,
      group: new MediaGroup(model, this.audio, (member, mic, hds) =>
        this.onMemberChange(room, member, mic, hds),
      ),
    };
    model.events.on('close', () => this.forget(room));
    this.byId.set(id, room);
    if (typeof key === 'string') this.byName.set(key, room);
    this.onCreate(room);
    return room;
  }

  /** Drops a room nobody joined after all (a refused first member). */
  removeIfEmpty(room: VoipRoom): void {
    if (room.group.size === 0) room.group.closeAll('empty');
  }

  list(): RoomSummary[] {
    return [...this.byId.values()].map((r) => this.summary(r));
  }

  summary(r: VoipRoom): RoomSummary {
    return { id: r.id, name: r.name, type: 'no type', desc: 'no desc', count: r.group.size };
  }

  get size(): number {
    return this.byId.size;
  }

  closeAll(): void {
    for (const r of [...this.byId.values()]) r.group.closeAll('shutdown');
  }

  private forget(room: VoipRoom): void {
    if (this.byId.get(room.id) === room) this.byId.delete(room.id);
    if (this.byName.get(room.name) === room) this.byName.delete(room.name);
  }
}
