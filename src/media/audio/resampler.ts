import { createRequire } from 'node:module';
import type speex from 'speex-resampler';

/**
 * Sample-rate conversion to 48 kHz through the speex resampler (WASM; about 90 dB SNR
 * at quality 5-7, see INTEROP.md). The WASM module must be loaded once with
 * `loadResampler()` before the first `acquireResampler()`.
 *
 * speex-resampler has no destroy: each instance keeps its state in the WASM heap for
 * the life of the process. Released instances therefore go back to a pool per
 * (channels, rate) and are reused, so memory follows the peak number of concurrent
 * uploads, not their total.
 */
export interface Resampler {
  readonly channels: number;
  readonly inRate: number;
  /** Interleaved s16le in, interleaved s16le at 48 kHz out (may be empty). */
  process(chunk: Buffer): Buffer;
  release(): void;
}

// A CommonJS module whose class is its `default` export; required as CommonJS so Node
// and Vitest's module interop agree on what that is.
const SpeexResampler = (createRequire(import.meta.url)('speex-resampler') as typeof speex).default;
type Native = InstanceType<typeof SpeexResampler>;
const QUALITY = 6;
const pool = new Map<string, Native[]>();
let loaded: Promise<void> | undefined;

export function loadResampler(): Promise<void> {
  loaded ??= SpeexResampler.initPromise.then(() => undefined);
  return loaded;
}

export function acquireResampler(channels: number, inRate: number, outRate = 48_000): Resampler {
  const key = `${channels}/${inRate}/${outRate}`;
  const native = pool.get(key)?.pop() ?? new SpeexResampler(channels, inRate, outRate, QUALITY);
  let released = false;
  return {
    channels,
    inRate,
    process: (chunk) => (chunk.length === 0 ? chunk : native.processChunk(chunk)),
    release() {
      if (released) return;
      released = true;
      let free = pool.get(key);
      if (!free) pool.set(key, (free = []));
      free.push(native);
    },
  };
}
