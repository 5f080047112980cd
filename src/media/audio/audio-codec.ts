import { createRequire } from 'node:module';
import type * as Opus from '@evan/opus';
import type { Encoder } from '@evan/opus';
import { FRAME_SAMPLES, SAMPLE_RATE } from './pcm-frame.js';

const requireHere = createRequire(import.meta.url);

/**
 * The Opus binding, required with the first encoder or decoder rather than at start: an
 * idle server (no mix, no Beep leg) keeps neither its native library nor its JS (about
 * 2.6 MiB of RSS, bench/idle, BENCHMARKS.md). Made once per mixer or leg, never per frame.
 */
function opus(): typeof Opus {
  return requireHere('@evan/opus') as typeof Opus;
}

/**
 * The codec seam: the mixer and the writers see only these interfaces, so the Opus
 * binding (`@evan/opus`, prebuilt; `@discordjs/opus` as a fallback) can change in one
 * place. Never `opusscript`: it corrupts memory with several encoders in one process.
 */
export interface AudioEncoder {
  /** Samples the decoder must drop at the start (Opus pre-skip, 48 kHz). */
  readonly preSkip: number;
  /** One 20 ms mono frame in, one packet out. */
  encode(frame: Int16Array): Uint8Array;
}

export interface AudioDecoder {
  /** One packet in, mono 48 kHz samples out. */
  decode(packet: Uint8Array): Int16Array;
}

export interface OpusSettings {
  bitrate: number;
  complexity: number;
}

export const DEFAULT_OPUS: OpusSettings = { bitrate: 32_000, complexity: 10 };

/** OPUS_GET_LOOKAHEAD: @evan/opus's typings misspell the getter. */
const GET_LOOKAHEAD = 4027;

export function createOpusEncoder(settings: OpusSettings = DEFAULT_OPUS): AudioEncoder {
  const encoder = new (opus().Encoder)({ channels: 1, sample_rate: SAMPLE_RATE, application: 'voip' });
  encoder.bitrate = settings.bitrate;
  encoder.complexity = settings.complexity as Encoder['complexity'];
  const preSkip = encoder.ctl(GET_LOOKAHEAD);
  return {
    preSkip,
    encode(frame) {
      if (frame.length !== FRAME_SAMPLES) throw new RangeError(`expected ${FRAME_SAMPLES} samples`);
      return encoder.encode(frame);
    },
  };
}

export function createOpusDecoder(): AudioDecoder {
  const decoder = new (opus().Decoder)({ channels: 1, sample_rate: SAMPLE_RATE });
  return {
    decode(packet) {
      const bytes = decoder.decode(packet);
      return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    },
  };
}
