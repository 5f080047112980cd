import type { Logger } from 'pino';
import type { Brand, UserId } from './ids.js';
import { TypedEmitter } from './typed-emitter.js';

export type RoomId = Brand<string, 'RoomId'>;
export const asRoomId = (s: string): RoomId => s as RoomId;

export type TrackKind = 'audio' | 'video';

export interface TrackInfo {
  id: string;
  kind: TrackKind;
  codec: string;
}

export interface RoomEvents extends Record<string, unknown> {
  participantJoined: { room: RoomId; user: UserId };
  participantLeft: { room: RoomId; user: UserId };
  trackPublished: { room: RoomId; user: UserId; track: TrackInfo };
  trackUnpublished: { room: RoomId; user: UserId; track: TrackInfo };
  subscribed: { room: RoomId; user: UserId; publisher: UserId };
  closed: { room: RoomId };
}

export class Participant {
  readonly tracks = new Map<string, TrackInfo>();
  constructor(readonly id: UserId) {}
}

/**
 * A room: who is in it and what they publish. No media and no I/O here; the media
 * plane and the surfaces follow it through typed events.
 */
export class Room {
  readonly participants = new Map<UserId, Participant>();
  readonly events: TypedEmitter<RoomEvents>;
  private closedFlag = false;

  constructor(
    readonly id: RoomId,
    log: Logger,
  ) {
    this.events = new TypedEmitter<RoomEvents>(log);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  join(user: UserId): Participant {
    let p = this.participants.get(user);
    if (!p) {
      p = new Participant(user);
      this.participants.set(user, p);
      this.events.emit('participantJoined', { room: this.id, user });
    }
    return p;
  }

  publishTrack(user: UserId, track: TrackInfo): void {
    this.join(user).tracks.set(track.id, track);
    this.events.emit('trackPublished', { room: this.id, user, track });
  }

  unpublishTrack(user: UserId, trackId: string): void {
    const p = this.participants.get(user);
    const track = p?.tracks.get(trackId);
    if (!p || !track) return;
    p.tracks.delete(trackId);
    this.events.emit('trackUnpublished', { room: this.id, user, track });
  }

  leave(user: UserId): void {
    const p = this.participants.get(user);
    if (!p) return;
    for (const id of [...p.tracks.keys()]) this.unpublishTrack(user, id);
    this.participants.delete(user);
    this.events.emit('participantLeft', { room: this.id, user });
  }

  /** Users with at least one published track. */
  publishers(): UserId[] {
    return [...this.participants.values()].filter((p) => p.tracks.size > 0).map((p) => p.id);
  }

  close(): void {
    if (this.closedFlag) return;
    for (const user of [...this.participants.keys()]) this.leave(user);
    this.closedFlag = true;
    this.events.emit('closed', { room: this.id });
  }
}

/** The rooms live on this node. */
export class RoomRegistry {
  private readonly rooms = new Map<RoomId, Room>();
  constructor(private readonly log: Logger) {}

  get(id: RoomId): Room | undefined {
    return this.rooms.get(id);
  }

  open(id: RoomId): Room {
    let r = this.rooms.get(id);
    if (!r || r.closed) {
      r = new Room(id, this.log.child({ room: id }));
      this.rooms.set(id, r);
    }
    return r;
  }

  close(id: RoomId): void {
    this.rooms.get(id)?.close();
    this.rooms.delete(id);
  }

  get size(): number {
    return this.rooms.size;
  }
}
