import type { Logger } from 'pino';
import type {
  CloseReason,
  ParticipantEvents,
  ParticipantId,
  ParticipantObserverEvents,
  TrackInit,
} from './room-types.js';
import { ChorusError } from './errors.js';
import { Track } from './track.js';
import { TypedEmitter } from '../lib/typed-emitter.js';

/** What a participant tells its room; set by the room that creates it. */
export interface ParticipantOwner {
  trackPublished(p: Participant, track: Track): void;
  trackEnded(p: Participant, track: Track, reason: CloseReason): void;
  subscribed(p: Participant, source: string): void;
  unsubscribed(p: Participant, source: string, reason: CloseReason): void;
  left(p: Participant, reason: CloseReason): void;
}

/**
 * Someone in a room: the tracks they publish and what they receive (a publisher's id,
 * or `mix` for a server-mixed room). Joined from creation until `leave()`, which ends
 * their tracks and drops their subscriptions first, so the legs carrying them stop
 * before the room hears that they left.
 */
export class Participant {
  readonly events: TypedEmitter<ParticipantEvents>;
  readonly observer: TypedEmitter<ParticipantObserverEvents>;
  private readonly trackMap = new Map<string, Track>();
  private readonly sources = new Set<string>();
  private leftFlag = false;

  constructor(
    readonly id: ParticipantId,
    private readonly log: Logger,
    private readonly owner: ParticipantOwner,
  ) {
    this.events = new TypedEmitter<ParticipantEvents>(log);
    this.observer = new TypedEmitter<ParticipantObserverEvents>(log);
  }

  /** False once the participant has left. */
  get joined(): boolean {
    return !this.leftFlag;
  }

  get closed(): boolean {
    return this.leftFlag;
  }

  get tracks(): ReadonlyMap<string, Track> {
    return this.trackMap;
  }

  /** What the participant receives (publisher ids, `mix`). */
  get subscriptions(): ReadonlySet<string> {
    return this.sources;
  }

  /** Publishes nothing and receives nothing. */
  get idle(): boolean {
    return this.trackMap.size === 0 && this.sources.size === 0;
  }

  /** The published track of this source, if any. */
  trackFrom(source: Track['source']): Track | undefined {
    for (const t of this.trackMap.values()) if (t.source === source) return t;
    return undefined;
  }

  /**
   * A new track; one published earlier under the same id ends first ('replaced').
   * Throws once the participant has left: a leg that outlived its room must not
   * publish into it.
   */
  publish(init: TrackInit): Track {
    if (this.leftFlag) throw new ChorusError('not_found', `participant ${this.id} has left`);
    this.trackMap.get(init.id)?.close('replaced');
    const track = new Track(init, this.id, this.log, (t, reason) => this.trackClosed(t, reason));
    this.trackMap.set(track.id, track);
    this.events.emit('trackPublished', { participant: this, track });
    this.observer.emit('newtrack', { track });
    this.owner.trackPublished(this, track);
    return track;
  }

  /** Starts receiving `source`; false when already receiving it or gone. */
  subscribe(source: string): boolean {
    if (this.leftFlag || this.sources.has(source)) return false;
    this.sources.add(source);
    this.events.emit('subscribed', { participant: this, source });
    this.owner.subscribed(this, source);
    return true;
  }

  /** Stops receiving `source` (nothing when not receiving it). */
  unsubscribe(source: string, reason: CloseReason = 'unsubscribed'): void {
    if (!this.sources.delete(source)) return;
    this.events.emit('unsubscribed', { participant: this, source, reason });
    this.owner.unsubscribed(this, source, reason);
  }

  /** Leaves the room (idempotent): tracks end, subscriptions drop, then `left`. */
  leave(reason: CloseReason = 'left'): void {
    if (this.leftFlag) return;
    this.leftFlag = true;
    for (const t of [...this.trackMap.values()]) t.close(reason);
    for (const s of [...this.sources]) this.unsubscribe(s, reason);
    this.events.emit('left', { participant: this, reason });
    this.observer.emit('close', { participant: this, reason });
    this.owner.left(this, reason);
  }

  close(reason: CloseReason = 'closed'): void {
    this.leave(reason);
  }

  private trackClosed(track: Track, reason: CloseReason): void {
    if (this.trackMap.get(track.id) !== track) return;
    this.trackMap.delete(track.id);
    this.events.emit('trackEnded', { participant: this, track, reason });
    this.owner.trackEnded(this, track, reason);
  }
}
