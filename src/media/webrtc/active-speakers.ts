import type { Logger } from 'pino';
import { TypedEmitter } from '../../lib/typed-emitter.js';
import {
  ActiveSpeakerDetector,
  DEFAULT_ACTIVE_SPEAKER,
  type ActiveSpeakerSettings,
  type SpeakerLevel,
} from './active-speaker-detector.js';
import type { PublishedTrack } from './published-track.js';

/** Who speaks in a room changed (or the order did): the loudest first. */
export interface SpeakersChanged {
  room: string;
  speakers: SpeakerLevel[];
}

export interface ActiveSpeakerEvents extends Record<string, unknown> {
  speakersChanged: SpeakersChanged;
}

/** The audio tracks of a room that carry levels, by the participant who publishes them. */
export type RoomAudio = Iterable<readonly [participant: string, track: PublishedTrack]>;

/**
 * Runs one ActiveSpeakerDetector per room over the SFU's audio tracks: every tick it
 * takes each track's mean level (AudioLevelMeter) and emits `speakersChanged` when a
 * room's speakers change. The per-packet work stays in the meter; this runs a few times a
 * second per room. No protocol here: surfaces listen and send it in their own form.
 */
export class ActiveSpeakers {
  readonly events: TypedEmitter<ActiveSpeakerEvents>;
  private readonly detectors = new Map<string, ActiveSpeakerDetector>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    /** The rooms with audio now, read each tick. */
    private readonly rooms: () => Iterable<readonly [room: string, audio: RoomAudio]>,
    private readonly log: Logger,
    private readonly settings: ActiveSpeakerSettings = DEFAULT_ACTIVE_SPEAKER,
  ) {
    this.events = new TypedEmitter<ActiveSpeakerEvents>(log);
    this.timer = setInterval(() => this.tick(), settings.tickMs);
    this.timer.unref();
  }

  /** The speakers of `room` now, loudest first (empty when nobody speaks). */
  speakers(room: string): SpeakerLevel[] {
    return this.detectors.get(room)?.speakers() ?? [];
  }

  tick(now = Date.now()): void {
    try {
      const seen = new Set<string>();
      for (const [room, audio] of this.rooms()) {
        const levels = new Map<string, number>();
        for (const [participant, track] of audio) {
          const level = track.audioLevel?.take();
          // Two audio tracks of one participant: the louder counts.
          if (level !== undefined) levels.set(participant, Math.max(level, levels.get(participant) ?? 0));
        }
        if (levels.size === 0) continue;
        seen.add(room);
        let detector = this.detectors.get(room);
        if (!detector) this.detectors.set(room, (detector = new ActiveSpeakerDetector(this.settings)));
        const changed = detector.update(levels, now);
        if (changed) this.events.emit('speakersChanged', { room, speakers: changed });
      }
      for (const [room, detector] of this.detectors) {
        if (seen.has(room)) continue;
        this.detectors.delete(room);
        // The room's last speaker left: say so once.
        if (detector.speakers().length > 0) this.events.emit('speakersChanged', { room, speakers: [] });
      }
    } catch (err) {
      this.log.error({ err }, 'active speaker detection failed');
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
