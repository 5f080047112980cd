import type { Logger } from 'pino';
import { ChorusError } from './errors.js';
import { Participant, type ParticipantOwner } from './participant.js';
import type {
  CloseReason,
  ParticipantId,
  RoomEvents,
  RoomId,
  RoomKind,
  RoomObserverEvents,
  RoomOptions,
} from './room-types.js';
import { TypedEmitter } from '../lib/typed-emitter.js';

export { asRoomId, type RoomId, type TrackInfo, type TrackKind } from './room-types.js';

/**
 * A room of any kind: who is in it and what they publish and receive, how many may be
 * in it, and whether it closes when the last one leaves. No media and no I/O here: the
 * media plane and the surfaces follow it through `events`, monitoring through
 * `observer`.
 *
 * The closing cascade, written once (docs/architecture.md): `close()` makes every
 * participant leave; a leaving participant ends its tracks (their `ended` listeners stop
 * the legs that carry them) and drops its subscriptions, then the room hears
 * `participantLeft`; after the last one the room emits `close` (mixers stop) and its
 * registry forgets it.
 */
export class Room<M = unknown> {
  readonly kind: RoomKind;
  readonly capacity: number;
  readonly closeWhenEmpty: boolean;
  readonly leaveWhenIdle: boolean;
  readonly metadata: M;
  readonly events: TypedEmitter<RoomEvents>;
  readonly observer: TypedEmitter<RoomObserverEvents>;
  private readonly members = new Map<ParticipantId, Participant>();
  private closedFlag = false;
  /** What this room's participants report to it. */
  private readonly owner: ParticipantOwner = {
    trackPublished: (participant, track) =>
      this.events.emit('trackPublished', { room: this, participant, track }),
    trackEnded: (participant, track, reason) => {
      this.events.emit('trackEnded', { room: this, participant, track, reason });
      this.leaveIfIdle(participant);
    },
    subscribed: (participant, source) => this.events.emit('subscribed', { room: this, participant, source }),
    unsubscribed: (participant, source, reason) => {
      this.events.emit('unsubscribed', { room: this, participant, source, reason });
      this.leaveIfIdle(participant);
    },
    left: (participant, reason) => this.participantLeft(participant, reason),
  };

  /** @param detach the registry's bookkeeping, run once after the room's own listeners. */
  constructor(
    readonly id: RoomId,
    options: RoomOptions<M>,
    private readonly log: Logger,
    private readonly detach: (id: RoomId) => void = () => undefined,
  ) {
    this.kind = options.kind;
    this.capacity = options.capacity ?? 0;
    this.closeWhenEmpty = options.closeWhenEmpty ?? false;
    this.leaveWhenIdle = options.leaveWhenIdle ?? false;
    this.metadata = options.metadata;
    this.events = new TypedEmitter<RoomEvents>(log);
    this.observer = new TypedEmitter<RoomObserverEvents>(log);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get participants(): ReadonlyMap<ParticipantId, Participant> {
    return this.members;
  }

  get size(): number {
    return this.members.size;
  }

  /** No one else may join now. */
  get full(): boolean {
    return this.capacity > 0 && this.members.size >= this.capacity;
  }

  participant(id: ParticipantId): Participant | undefined {
    return this.members.get(id);
  }

  /**
   * The participant `id`, joining now if not in the room yet. Throws ChorusError
   * `not_found` when the room has closed and `capacity` when it is full.
   */
  join(id: ParticipantId): Participant {
    const found = this.members.get(id);
    if (found) return found;
    if (this.closedFlag) throw new ChorusError('not_found', `room ${this.id} is closed`);
    if (this.full) {
      throw new ChorusError('capacity', `room ${this.id} is full (${this.capacity})`, { room: this.id });
    }
    const p = new Participant(id, this.log, this.owner);
    this.members.set(id, p);
    this.events.emit('participantJoined', { room: this, participant: p });
    this.observer.emit('newparticipant', { participant: p });
    return p;
  }

  /** `id` leaves (nothing when not in the room). */
  leave(id: ParticipantId, reason: CloseReason = 'left'): void {
    this.members.get(id)?.leave(reason);
  }

  /** Participants with at least one published track. */
  publishers(): ParticipantId[] {
    return [...this.members.values()].filter((p) => p.tracks.size > 0).map((p) => p.id);
  }

  /** Closes the room (idempotent): everyone leaves, then `close`. */
  close(reason: CloseReason = 'closed'): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const p of [...this.members.values()]) p.leave(reason);
    this.events.emit('close', { room: this, reason });
    this.observer.emit('close', { room: this, reason });
    this.detach(this.id);
  }

  private participantLeft(participant: Participant, reason: CloseReason): void {
    if (this.members.get(participant.id) !== participant) return;
    this.members.delete(participant.id);
    this.events.emit('participantLeft', { room: this, participant, reason });
    if (this.closeWhenEmpty && this.members.size === 0 && !this.closedFlag) this.close('empty');
  }

  private leaveIfIdle(participant: Participant): void {
    if (this.leaveWhenIdle && participant.joined && participant.idle) participant.leave('idle');
  }
}
