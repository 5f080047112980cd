import { createOpusEncoder, type AudioEncoder, type OpusSettings } from './audio-codec.js';
import { MixFeed, type FeedCounters, type FeedFormat, type FeedReader, type FeedSink } from './mix-feed.js';
import { FRAME_SAMPLES, frameBytes } from './pcm-frame.js';
import type { PcmInput } from './pcm-input.js';

/** What one listener gets each tick: its mix as PCM, and as Opus encoded on demand. */
export interface MixFrame {
  /** 20 ms of s16le mono 48 kHz (valid during the call only: copy to keep). */
  readonly pcm: Buffer;
  /** The same 20 ms as one Opus packet, encoded at most once per mix per tick. */
  opus(): Uint8Array;
}

export interface MixListener {
  onFrame(frame: MixFrame): void;
}

/** Audio work done, counted across mixers (metrics; tests that show sharing). */
export interface AudioCounters extends FeedCounters {
  /** Opus packets encoded: one per distinct mix per tick, whatever number hear it. */
  encodes: number;
}

export function newAudioCounters(): AudioCounters {
  return { encodes: 0, oggPages: 0, oggPageCopies: 0, wavChunks: 0 };
}

/** The key of the mix everyone hears who is not a speaker. */
const FULL_MIX = '';
/** A frame peaking below this (about -44 dBFS) is treated as silence from its speaker. */
const QUIET_PEAK = 200;

/**
 * One distinct mix: everyone minus one speaker (or the full mix), with the listeners
 * who hear it, its own limiter state and Opus encoder (Opus is stateful: one encoder per
 * continuous stream), and a short backlog of recent packets for late joiners.
 */
class MixBus implements MixFrame {
  readonly listeners = new Set<MixListener>();
  /** The listening streams of this mix, by flush interval (in practice one): see MixFeed. */
  readonly feeds = new Map<number, MixFeed>();
  readonly pcmFrame = new Int16Array(FRAME_SAMPLES);
  readonly pcm = frameBytes(this.pcmFrame);
  private encoder: AudioEncoder | undefined;
  private packet: Uint8Array | undefined;
  /** Recent packets, oldest first, bounded by `backlogPackets`. */
  readonly backlog: Uint8Array[] = [];
  private gain = 1;

  constructor(
    private readonly opusSettings: OpusSettings,
    private readonly backlogPackets: number,
    private readonly counters: AudioCounters | undefined,
  ) {}

  get preSkip(): number {
    return this.ensureEncoder().preSkip;
  }

  /** Writes `sum - own` with a peak limiter; clamps what is left to 16 bits. */
  render(sum: Int32Array, own: Int16Array | undefined): void {
    let peak = 0;
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const v = Math.abs(sum[i]! - (own ? own[i]! : 0));
      if (v > peak) peak = v;
    }
    // Instant attack to the gain that keeps this frame's peak in range, slow release
    // (about 0.5 s back to unity): speakers summing past full scale are turned down
    // smoothly instead of hard-clipped into distortion.
    const from = this.gain;
    const target = peak * from > 32767 ? 32767 / peak : Math.min(1, from + 0.04);
    const step = (target - from) / FRAME_SAMPLES;
    const out = this.pcmFrame;
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const g = from + step * (i + 1);
      const v = Math.round((sum[i]! - (own ? own[i]! : 0)) * g);
      out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    this.gain = target;
    this.packet = undefined;
  }

  opus(): Uint8Array {
    if (!this.packet) {
      this.packet = this.ensureEncoder().encode(this.pcmFrame);
      if (this.counters) this.counters.encodes++;
      if (this.backlogPackets > 0) {
        this.backlog.push(this.packet);
        if (this.backlog.length > this.backlogPackets) this.backlog.shift();
      }
    }
    return this.packet;
  }

  private ensureEncoder(): AudioEncoder {
    this.encoder ??= createOpusEncoder(this.opusSettings);
    return this.encoder;
  }
}

export interface MixerOptions {
  opus: OpusSettings;
  /** Opus packets (20 ms each) kept per mix for listeners who join late; 0 = none. */
  backlogPackets: number;
  /** Called with the error when a listener throws; the listener is removed. */
  onListenerError(err: unknown): void;
  counters?: AudioCounters;
}

/** A listener's place in the mixer: its mix's pre-skip and backlog, and how to leave. */
export interface MixSubscription {
  readonly preSkip: number;
  /** Recent packets of this mix, oldest first (a copy). */
  backlog(): Uint8Array[];
  close(): void;
}

/**
 * Mix-minus for a call or a room: every tick (20 ms) each speaker's next frame is
 * summed once, and each distinct mix (the sum minus one speaker, or the whole sum) is
 * rendered and encoded once however many listeners hear it. Nobody hears themself; a
 * speaker who runs dry contributes silence; listeners of an empty room get silence so
 * their streams keep flowing.
 */
export class AudioMixer {
  private readonly inputs = new Map<
    string,
    { input: PcmInput; frame: Int16Array; has: boolean; loud: boolean }
  >();
  private readonly buses = new Map<string, MixBus>();
  /** Whose voice each listener must not hear (undefined: a pure listener). */
  private readonly wanted = new Map<MixListener, string | undefined>();
  private readonly sum = new Int32Array(FRAME_SAMPLES);
  /** Readers of the full mix who would hear their own voice if they spoke, by listener id. */
  private readonly waiting = new Map<string, Map<FeedReader, number>>();
  private ticks = 0;

  constructor(private readonly options: MixerOptions) {}

  get speakers(): number {
    return this.inputs.size;
  }

  get listenerCount(): number {
    let n = 0;
    for (const bus of this.buses.values()) {
      n += bus.listeners.size - bus.feeds.size;
      for (const feed of bus.feeds.values()) n += feed.readerCount;
    }
    return n;
  }

  get idle(): boolean {
    return this.inputs.size === 0 && this.listenerCount === 0;
  }

  /** Distinct mixes rendered per tick (for metrics and tests). */
  get mixes(): number {
    return this.buses.size;
  }

  addInput(id: string, input: PcmInput): void {
    if (id === FULL_MIX) throw new RangeError('empty speaker id');
    this.inputs.set(id, { input, frame: new Int16Array(FRAME_SAMPLES), has: false, loud: false });
    // A listener who starts speaking moves from the full mix to the mix without them.
    for (const [listener, speaker] of this.wanted) if (speaker === id) this.move(listener, FULL_MIX, id);
    const readers = this.waiting.get(id);
    if (readers) {
      this.waiting.delete(id);
      for (const [r, flushTicks] of readers) this.feed(id, flushTicks).adopt(r);
    }
    // With a backlog, the mixes a late listener might want exist (and encode) from the
    // first word: everyone-but-this-speaker, and the full mix.
    if (this.options.backlogPackets > 0) {
      this.bus(id);
      this.bus(FULL_MIX);
    }
  }

  removeInput(id: string): void {
    this.inputs.get(id)?.input.close();
    this.inputs.delete(id);
    for (const [listener, speaker] of this.wanted) if (speaker === id) this.move(listener, id, FULL_MIX);
    this.prune();
  }

  /**
   * Listen to everyone except `speakerId` (the listener's own voice), or to all. While
   * `speakerId` is not speaking the listener shares the full mix with everyone else.
   */
  listen(listener: MixListener, speakerId?: string): MixSubscription {
    const key = speakerId !== undefined && this.inputs.has(speakerId) ? speakerId : FULL_MIX;
    const bus = this.bus(key);
    bus.listeners.add(listener);
    this.wanted.set(listener, speakerId);
    return {
      preSkip: bus.preSkip,
      backlog: () => bus.backlog.slice(),
      close: () => {
        const speaker = this.wanted.get(listener);
        if (!this.wanted.delete(listener)) return;
        const home = speaker !== undefined && this.inputs.has(speaker) ? speaker : FULL_MIX;
        this.buses.get(home)?.listeners.delete(listener);
        this.prune();
      },
    };
  }

  /**
   * A listening stream: what `me` must hear (everyone but themself; everyone while they
   * do not speak), written to `sink` as `format`, shared with every other stream of the
   * same mix (see MixFeed): one encode and one Ogg page or WAV chunk per flush for all.
   * Ogg and WAV are written every `flushTicks` ticks.
   */
  read(me: string | undefined, format: FeedFormat, sink: FeedSink, flushTicks = 1): FeedReader {
    const key = me !== undefined && this.inputs.has(me) ? me : FULL_MIX;
    const onClose = (r: FeedReader) => {
      if (me === undefined) return;
      const set = this.waiting.get(me);
      if (set?.delete(r) && set.size === 0) this.waiting.delete(me);
    };
    const reader = this.feed(key, flushTicks).join(format, sink, onClose);
    if (key === FULL_MIX && me !== undefined) {
      let readers = this.waiting.get(me);
      if (!readers) this.waiting.set(me, (readers = new Map<FeedReader, number>()));
      readers.set(reader, flushTicks);
    }
    return reader;
  }

  private feed(key: string, flushTicks: number): MixFeed {
    const bus = this.bus(key);
    let feed = bus.feeds.get(flushTicks);
    if (!feed) {
      const made = new MixFeed({
        preSkip: bus.preSkip,
        flushTicks,
        backlogPackets: this.options.backlogPackets,
        backlog: bus.backlog,
        phase: this.ticks,
        ...(this.options.counters ? { counters: this.options.counters } : {}),
        onSinkError: (err) => this.options.onListenerError(err),
        onEmpty: () => {
          if (bus.feeds.get(flushTicks) !== made) return;
          bus.feeds.delete(flushTicks);
          bus.listeners.delete(made);
          this.prune();
        },
      });
      feed = made;
      bus.feeds.set(flushTicks, feed);
      bus.listeners.add(feed);
    }
    return feed;
  }

  private move(listener: MixListener, from: string, to: string): void {
    this.buses.get(from)?.listeners.delete(listener);
    this.bus(to).listeners.add(listener);
    this.prune();
  }

  tick(): void {
    const sum = this.sum;
    sum.fill(0);
    for (const slot of this.inputs.values()) {
      slot.has = slot.input.readFrame(slot.frame);
      slot.loud = false;
      if (!slot.has) continue;
      const f = slot.frame;
      let peak = 0;
      for (let i = 0; i < FRAME_SAMPLES; i++) {
        const v = f[i]!;
        sum[i]! += v;
        if (v > peak) peak = v;
        else if (-v > peak) peak = -v;
      }
      slot.loud = peak >= QUIET_PEAK;
    }
    // A speaker who is quiet this tick hears the full mix: their own voice is below
    // hearing, and the full mix is rendered and encoded once for all of them. In a
    // room where one or two people talk, that is 2-3 encodes a tick instead of one
    // per speaker.
    let full: MixBus | undefined;
    const fullMix = (): MixBus => {
      if (!full) {
        full = this.bus(FULL_MIX);
        full.render(sum, undefined);
        if (this.options.backlogPackets > 0) full.opus();
      }
      return full;
    };
    for (const [key, bus] of this.buses) {
      let frame: MixBus;
      if (key === FULL_MIX) {
        frame = fullMix();
      } else {
        const own = this.inputs.get(key);
        if (own?.loud) {
          bus.render(sum, own.frame);
          if (this.options.backlogPackets > 0) bus.opus();
          frame = bus;
        } else {
          frame = fullMix();
        }
      }
      for (const listener of bus.listeners) {
        try {
          listener.onFrame(frame);
        } catch (err) {
          bus.listeners.delete(listener);
          this.wanted.delete(listener);
          this.options.onListenerError(err);
        }
      }
    }
    this.ticks++;
  }

  close(): void {
    for (const slot of this.inputs.values()) slot.input.close();
    this.inputs.clear();
    for (const bus of [...this.buses.values()]) for (const feed of [...bus.feeds.values()]) feed.close();
    this.buses.clear();
    this.wanted.clear();
    this.waiting.clear();
  }

  private bus(key: string): MixBus {
    let bus = this.buses.get(key);
    if (!bus) {
      bus = new MixBus(this.options.opus, this.options.backlogPackets, this.options.counters);
      this.buses.set(key, bus);
    }
    return bus;
  }

  /** Drops mixes nobody hears and no late listener could want. */
  private prune(): void {
    const keep = this.options.backlogPackets > 0;
    for (const [key, bus] of this.buses) {
      if (bus.listeners.size > 0) continue;
      if (keep && (this.inputs.has(key) || (key === FULL_MIX && this.inputs.size > 0))) continue;
      this.buses.delete(key);
    }
  }
}
