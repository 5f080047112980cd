import type { Logger } from 'pino';
import type {
  CloseReason,
  ParticipantId,
  TrackEvents,
  TrackInfo,
  TrackInit,
  TrackKind,
  TrackObserverEvents,
  TrackSource,
} from './room-types.js';
import { TypedEmitter } from '../lib/typed-emitter.js';

/**
 * One media track a participant publishes (a microphone, a camera). The model only
 * knows that it exists and when it ends; whatever carries its media (a WebRTC leg, an
 * upload into a mixer) listens for `ended` and stops.
 */
export class Track {
  readonly id: string;
  readonly kind: TrackKind;
  readonly source: TrackSource;
  readonly codec: string;
  readonly publisher: ParticipantId;
  readonly events: TypedEmitter<TrackEvents>;
  readonly observer: TypedEmitter<TrackObserverEvents>;
  private closedFlag = false;
  private mutedFlag = false;
  private mutedByServerFlag = false;

  /** @param detach the owner's bookkeeping, run once after the track's own listeners. */
  constructor(
    init: TrackInit,
    publisher: ParticipantId,
    log: Logger,
    private readonly detach: (track: Track, reason: CloseReason) => void,
  ) {
    this.id = init.id;
    this.kind = init.kind;
    this.source = init.source;
    this.codec = init.codec ?? '';
    this.publisher = publisher;
    this.events = new TypedEmitter<TrackEvents>(log);
    this.observer = new TypedEmitter<TrackObserverEvents>(log);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Muted: whatever carries the track's media forwards none of it until unmuted. */
  get muted(): boolean {
    return this.mutedFlag;
  }

  /** Muted by the server (the room service), so only the server may unmute it. */
  get mutedByServer(): boolean {
    return this.mutedByServerFlag;
  }

  /** Mutes or unmutes the track; false when nothing changed (or it has ended). */
  setMuted(muted: boolean, byServer: boolean): boolean {
    if (this.closedFlag || muted === this.mutedFlag) return false;
    this.mutedFlag = muted;
    this.mutedByServerFlag = muted && byServer;
    this.events.emit('muted', { track: this, muted, byServer });
    return true;
  }

  info(): TrackInfo {
    return { id: this.id, kind: this.kind, source: this.source, codec: this.codec };
  }

  /**
   * Ends the track (idempotent). What carries its media hears `ended` first, then the
   * participant and the room learn it is gone.
   */
  close(reason: CloseReason = 'closed'): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.events.emit('ended', { track: this, reason });
    this.observer.emit('close', { track: this, reason });
    this.detach(this, reason);
  }
}
