/**
 * Active speakers computed in the client from audio levels (getStats' `audioLevel`,
 * 0..1), for servers that do not send `speakers` yet. Pure: fed with samples, it says who
 * speaks. Each identity's level is smoothed (exponential moving average) and someone
 * counts as speaking above `startLevel` and stops below the lower `stopLevel`
 * (hysteresis), so a speaker between two words does not flicker in and out.
 */
export interface SpeakerLevelOptions {
  /** Smoothed level at which someone starts speaking (default 0.05; Chromium's fake mic beeps at ~0.3). */
  startLevel?: number;
  /** Smoothed level below which they stop (default 0.02). */
  stopLevel?: number;
  /** Weight of a new sample in the average, 0..1 (default 0.5). */
  smoothing?: number;
}

export interface SpeakerLevel {
  identity: string;
  level: number;
}

export class SpeakerLevels {
  readonly #smoothed = new Map<string, number>();
  readonly #speaking = new Set<string>();
  readonly #start: number;
  readonly #stop: number;
  readonly #alpha: number;

  constructor(options: SpeakerLevelOptions = {}) {
    this.#start = options.startLevel ?? 0.05;
    this.#stop = options.stopLevel ?? 0.02;
    this.#alpha = options.smoothing ?? 0.5;
  }

  /**
   * One round of samples (identity -> level now). Identities missing from the round have
   * gone quiet (or left) and decay. Returns the speakers, loudest first.
   */
  update(levels: ReadonlyMap<string, number>): SpeakerLevel[] {
    for (const id of new Set([...this.#smoothed.keys(), ...levels.keys()])) {
      const sample = Math.min(1, Math.max(0, levels.get(id) ?? 0));
      const before = this.#smoothed.get(id);
      const level = before === undefined ? sample : before + this.#alpha * (sample - before);
      if (level < 0.001 && !levels.has(id)) {
        this.#smoothed.delete(id);
        this.#speaking.delete(id);
        continue;
      }
      this.#smoothed.set(id, level);
      if (level >= this.#start) this.#speaking.add(id);
      else if (level < this.#stop) this.#speaking.delete(id);
    }
    return [...this.#speaking]
      .map((identity) => ({ identity, level: this.#smoothed.get(identity) ?? 0 }))
      .sort((a, b) => b.level - a.level);
  }
}

/** True when two speaker lists name the same identities in the same order. */
export function sameSpeakers(a: readonly SpeakerLevel[], b: readonly SpeakerLevel[]): boolean {
  return a.length === b.length && a.every((s, i) => s.identity === b[i]?.identity);
}
