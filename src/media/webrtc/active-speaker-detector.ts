import { amplitudeToDbov } from './audio-level.js';

/** One speaking participant and how loud, as an amplitude from 0 (silence) to 1. */
export interface SpeakerLevel {
  participant: string;
  level: number;
}

/** The detector's knobs; the defaults are documented in docs/sfu.md. */
export interface ActiveSpeakerSettings {
  /** How often levels are read (ms). */
  tickMs: number;
  /** Time constant of the level's smoothing (ms). */
  smoothingMs: number;
  /** Louder than this (dBov) for `minSpeakMs` starts speaking. */
  startDbov: number;
  /** Quieter than this (dBov) for `holdMs` stops speaking; the gap to `startDbov` is the hysteresis. */
  stopDbov: number;
  minSpeakMs: number;
  holdMs: number;
  /** How much louder (dB) another speaker must be to take the first place. */
  overtakeDb: number;
}

export const DEFAULT_ACTIVE_SPEAKER: ActiveSpeakerSettings = {
  tickMs: 200,
  smoothingMs: 300,
  startDbov: 45,
  stopDbov: 55,
  minSpeakMs: 200,
  holdMs: 1000,
  overtakeDb: 3,
};

interface Voice {
  smoothed: number;
  speaking: boolean;
  /** When the level first crossed the threshold it is heading to (0: it is not). */
  crossedAt: number;
}

/**
 * Who speaks in one room, from each participant's audio level (RFC 6464, averaged per
 * tick by AudioLevelMeter). The algorithm, deliberately simple (a cut-down form of the
 * dominant-speaker idea of Volfin and Cohen: long-term level, not instantaneous peaks):
 * 1. each tick the mean amplitude is smoothed exponentially (time constant `smoothingMs`),
 *    so a click or a single loud packet does not make a speaker;
 * 2. a participant starts speaking once its smoothed level stays above `startDbov` for
 *    `minSpeakMs`, and stops once it stays below `stopDbov` for `holdMs` (hysteresis and
 *    hangover: the pauses between words do not end a turn);
 * 3. speakers are listed loudest first, except that the first one keeps its place until
 *    another is `overtakeDb` louder (no flapping between two similar voices).
 * `update` returns the new list when who speaks or their order changed, else undefined.
 */
export class ActiveSpeakerDetector {
  private readonly voices = new Map<string, Voice>();
  private current: string[] = [];
  private readonly alpha: number;
  private readonly startAmplitude: number;
  private readonly stopAmplitude: number;

  constructor(private readonly settings: ActiveSpeakerSettings = DEFAULT_ACTIVE_SPEAKER) {
    this.alpha = 1 - Math.exp(-settings.tickMs / settings.smoothingMs);
    this.startAmplitude = 10 ** (-settings.startDbov / 20);
    this.stopAmplitude = 10 ** (-settings.stopDbov / 20);
  }

  /** One tick: each present participant's mean amplitude since the last tick. */
  update(levels: ReadonlyMap<string, number>, now: number): SpeakerLevel[] | undefined {
    for (const id of this.voices.keys()) if (!levels.has(id)) this.voices.delete(id);
    for (const [id, raw] of levels) {
      const amplitude = Number.isFinite(raw) ? Math.min(1, Math.max(0, raw)) : 0;
      let v = this.voices.get(id);
      if (!v) this.voices.set(id, (v = { smoothed: amplitude, speaking: false, crossedAt: 0 }));
      else v.smoothed += this.alpha * (amplitude - v.smoothed);
      const crossing = v.speaking ? v.smoothed < this.stopAmplitude : v.smoothed >= this.startAmplitude;
      if (!crossing) v.crossedAt = 0;
      else if (v.crossedAt === 0) v.crossedAt = now;
      if (crossing && now - v.crossedAt >= (v.speaking ? this.settings.holdMs : this.settings.minSpeakMs)) {
        v.speaking = !v.speaking;
        v.crossedAt = 0;
      }
    }
    const order = this.order();
    const changed = order.length !== this.current.length || order.some((id, i) => id !== this.current[i]);
    this.current = order;
    return changed ? this.speakers() : undefined;
  }

  /** The speakers now, first the dominant one. */
  speakers(): SpeakerLevel[] {
    return this.current.map((participant) => ({
      participant,
      level: Math.round((this.voices.get(participant)?.smoothed ?? 0) * 1000) / 1000,
    }));
  }

  /** The smoothed level of `participant` in dBov (127: silence or unknown). */
  dbov(participant: string): number {
    return amplitudeToDbov(this.voices.get(participant)?.smoothed ?? 0);
  }

  private order(): string[] {
    const speaking = [...this.voices].filter(([, v]) => v.speaking);
    speaking.sort((a, b) => b[1].smoothed - a[1].smoothed);
    const ids = speaking.map(([id]) => id);
    const first = this.current[0];
    const kept = first === undefined ? undefined : this.voices.get(first);
    if (kept?.speaking && ids[0] !== first) {
      const loudest = speaking[0]![1].smoothed;
      if (20 * Math.log10(loudest / Math.max(kept.smoothed, 1e-9)) < this.settings.overtakeDb) {
        ids.splice(ids.indexOf(first!), 1);
        ids.unshift(first!);
      }
    }
    return ids;
  }
}
