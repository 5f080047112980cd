import { FRAME_SAMPLES, SAMPLE_RATE } from './pcm-frame.js';
import { acquireResampler, loadResampler, type Resampler } from './resampler.js';

export interface PcmFormat {
  /** Sample rate of the uploaded PCM; anything but 48 kHz is resampled. */
  rate: number;
  /** Interleaved channels of the uploaded PCM; more than one is averaged to mono. */
  channels: number;
}

/**
 * Loads what a `PcmInput` of `format` needs before one is made: the resampler, for any
 * rate but 48 kHz (loaded with the first such upload, not at start; resampler.ts).
 */
export async function preparePcmInput(format: PcmFormat): Promise<void> {
  if (format.rate !== SAMPLE_RATE) await loadResampler();
}

/**
 * One speaker's jitter buffer: raw s16le bytes in, at any rate and channel count, and
 * 20 ms mono 48 kHz frames out, one per mixer tick.
 *
 * Bounded: past `maxMs` of audio the oldest is dropped (a client sending faster than
 * real time must not grow latency without end, as the original did). After running dry
 * it waits for `primeMs` before playing again, so a client whose packets arrive in
 * bursts is heard in whole frames rather than as crackle.
 */
export class PcmInput {
  private readonly ring: Int16Array;
  private head = 0;
  private size = 0;
  private primed = false;
  /** A trailing partial sample frame (odd byte, or an incomplete multichannel frame). */
  private carry: Buffer = Buffer.alloc(0);
  private readonly resampler: Resampler | undefined;
  private readonly bytesPerFrame: number;
  /** Samples dropped because the buffer was full, for logs and metrics. */
  droppedSamples = 0;

  constructor(
    readonly format: PcmFormat = { rate: SAMPLE_RATE, channels: 1 },
    maxMs = 500,
    private readonly primeMs = 40,
  ) {
    this.ring = new Int16Array(Math.max(FRAME_SAMPLES * 2, (SAMPLE_RATE / 1000) * maxMs));
    this.bytesPerFrame = 2 * format.channels;
    this.resampler = format.rate === SAMPLE_RATE ? undefined : acquireResampler(format.channels, format.rate);
  }

  /** Buffered audio, in milliseconds. */
  get bufferedMs(): number {
    return this.size / (SAMPLE_RATE / 1000);
  }

  get capacityMs(): number {
    return this.ring.length / (SAMPLE_RATE / 1000);
  }

  write(chunk: Buffer): void {
    let data = chunk;
    if (this.carry.length > 0) {
      data = Buffer.concat([this.carry, chunk]);
      this.carry = Buffer.alloc(0);
    }
    const whole = data.length - (data.length % this.bytesPerFrame);
    if (whole < data.length) this.carry = Buffer.from(data.subarray(whole));
    if (whole === 0) return;
    let pcm = data.subarray(0, whole);
    if (this.resampler) pcm = this.resampler.process(pcm);
    this.push(pcm);
  }

  /** Fills `out` with the next 20 ms; false (and `out` untouched) when there is not enough. */
  readFrame(out: Int16Array): boolean {
    if (!this.primed) {
      if (this.size < Math.max(FRAME_SAMPLES, (SAMPLE_RATE / 1000) * this.primeMs)) return false;
      this.primed = true;
    }
    if (this.size < FRAME_SAMPLES) {
      this.primed = false;
      return false;
    }
    const ring = this.ring;
    const first = Math.min(FRAME_SAMPLES, ring.length - this.head);
    out.set(ring.subarray(this.head, this.head + first), 0);
    if (first < FRAME_SAMPLES) out.set(ring.subarray(0, FRAME_SAMPLES - first), first);
    this.head = (this.head + FRAME_SAMPLES) % ring.length;
    this.size -= FRAME_SAMPLES;
    return true;
  }

  close(): void {
    this.resampler?.release();
  }

  private push(pcm: Buffer): void {
    const channels = this.format.channels;
    const frames = pcm.length / (2 * channels);
    const ring = this.ring;
    for (let i = 0; i < frames; i++) {
      let sample: number;
      if (channels === 1) {
        sample = pcm.readInt16LE(i * 2);
      } else {
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += pcm.readInt16LE((i * channels + c) * 2);
        sample = Math.round(sum / channels);
      }
      if (this.size === ring.length) {
        // Full: drop the oldest sample to make room for the newest.
        this.head = (this.head + 1) % ring.length;
        this.size--;
        this.droppedSamples++;
      }
      ring[(this.head + this.size) % ring.length] = sample;
      this.size++;
    }
  }
}
