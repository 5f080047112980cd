import type { Logger } from 'pino';
import type { OpusSettings } from './audio-codec.js';
import { AudioMixer, newAudioCounters, type AudioCounters } from './audio-mixer.js';
import { FRAME_MS } from './pcm-frame.js';
import { MixClock } from './mix-clock.js';

export interface AudioHubOptions {
  opus: OpusSettings;
  /** Recent audio kept per mix for late listeners, ms (0: none). */
  backlogMs: number;
}

/**
 * The node's audio mixers (one per call or room), all driven by one 20 ms clock.
 * A mixer ticks from `open` until `close`.
 */
export class AudioHub {
  private readonly clock: MixClock;
  private readonly mixers = new Set<AudioMixer>();
  /** Encodes, Ogg pages and WAV chunks made by every mixer of this hub, ever. */
  readonly counters: AudioCounters = newAudioCounters();

  constructor(
    private readonly options: AudioHubOptions,
    private readonly log: Logger,
  ) {
    this.clock = new MixClock((err) => this.log.error({ err }, 'audio mixer tick failed'));
  }

  open(): AudioMixer {
    const mixer = new AudioMixer({
      opus: this.options.opus,
      backlogPackets: Math.ceil(this.options.backlogMs / FRAME_MS),
      onListenerError: (err) => this.log.warn({ err }, 'audio listener failed; removed'),
      counters: this.counters,
    });
    this.mixers.add(mixer);
    this.clock.add(mixer);
    return mixer;
  }

  close(mixer: AudioMixer): void {
    if (!this.mixers.delete(mixer)) return;
    this.clock.remove(mixer);
    mixer.close();
  }

  get size(): number {
    return this.mixers.size;
  }

  get skippedTicks(): number {
    return this.clock.skippedTicks;
  }

  closeAll(): void {
    for (const m of [...this.mixers]) this.close(m);
    this.clock.stop();
  }
}
