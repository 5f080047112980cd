import type { SpeexWasm } from '@echogarden/speex-resampler-wasm/simd';

/**
 * Sample-rate conversion to 48 kHz through the speexdsp resampler, built to WASM with
 * SIMD (@echogarden/speex-resampler-wasm). Quality 6 gives about 89 dB SNR, the floor
 * of 16-bit output, at 150-650x realtime (BENCHMARKS.md, bench/resampler). The module
 * must be loaded once with `loadResampler()` before the first `acquireResampler()`: the
 * first upload that needs resampling does it (pcm-input.ts, preparePcmInput), so an idle
 * server holds neither the glue nor the WASM instance (3.6 MiB, bench/idle).
 *
 * It replaced `speex-resampler` (the same C code, an old Emscripten build) whose glue
 * installed process-wide uncaughtException/unhandledRejection handlers that rethrew or
 * aborted. This build installs none and has a destroy, so released state is freed.
 */
export interface Resampler {
  readonly channels: number;
  readonly inRate: number;
  /**
   * Interleaved s16le in, interleaved s16le at the output rate out (may be empty). The
   * result is a view of the resampler's memory, valid until the next `process` of any
   * resampler: read it (or copy it) at once.
   */
  process(chunk: Buffer): Buffer;
  /** Frees the state; idempotent. */
  release(): void;
}

const QUALITY = 6;
// Speex may write a few frames more than the exact ratio (its filter phase carries).
const OUT_SLACK_FRAMES = 64;

/** The loaded module and one scratch area shared by all instances (calls are synchronous). */
interface Heap {
  wasm: SpeexWasm;
  /** Two u32 in/out lengths, then the error code. */
  lens: number;
  inPtr: number;
  inBytes: number;
  outPtr: number;
  outBytes: number;
}

let heap: Heap | undefined;
let loading: Promise<void> | undefined;

export function loadResampler(): Promise<void> {
  loading ??= (async () => {
    const { default: loadSpeexWasm } = await import('@echogarden/speex-resampler-wasm/simd');
    const wasm = await loadSpeexWasm();
    heap = { wasm, lens: wasm._malloc(12), inPtr: 0, inBytes: 0, outPtr: 0, outBytes: 0 };
  })();
  return loading;
}

function speexError(wasm: SpeexWasm, code: number): Error {
  const at = wasm._speex_resampler_strerror(code);
  const bytes = wasm.HEAPU8;
  let end = at;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return new Error(`speex resampler: ${Buffer.from(bytes.subarray(at, end)).toString('latin1')}`);
}

/** Grows a scratch buffer in the WASM heap (its old contents are not kept). */
function ensure(h: Heap, which: 'in' | 'out', bytes: number): void {
  if (which === 'in' ? h.inBytes >= bytes : h.outBytes >= bytes) return;
  const size = Math.max(bytes, 4096);
  if (which === 'in') {
    if (h.inPtr) h.wasm._free(h.inPtr);
    h.inPtr = h.wasm._malloc(size);
    h.inBytes = size;
  } else {
    if (h.outPtr) h.wasm._free(h.outPtr);
    h.outPtr = h.wasm._malloc(size);
    h.outBytes = size;
  }
}

export function acquireResampler(channels: number, inRate: number, outRate = 48_000): Resampler {
  const h = heap;
  if (!h) throw new Error('loadResampler() must complete before acquireResampler()');
  const { wasm } = h;
  let state = wasm._speex_resampler_init(channels, inRate, outRate, QUALITY, h.lens + 8);
  if (state === 0) throw speexError(wasm, wasm.HEAPU32[(h.lens + 8) >> 2] ?? 0);
  const frameBytes = 2 * channels;
  return {
    channels,
    inRate,
    process(chunk) {
      if (chunk.length === 0) return chunk;
      if (state === 0) throw new Error('resampler used after release');
      const frames = Math.floor(chunk.length / frameBytes);
      const outFrames = Math.ceil((frames * outRate) / inRate) + OUT_SLACK_FRAMES;
      ensure(h, 'in', frames * frameBytes);
      ensure(h, 'out', outFrames * frameBytes);
      wasm.HEAPU8.set(chunk.subarray(0, frames * frameBytes), h.inPtr);
      let inDone = 0;
      let outDone = 0;
      // One call normally takes the whole chunk; loop in case the output slack ran out.
      while (inDone < frames && outDone < outFrames) {
        const u32 = wasm.HEAPU32;
        u32[h.lens >> 2] = frames - inDone;
        u32[(h.lens >> 2) + 1] = outFrames - outDone;
        const err = wasm._speex_resampler_process_interleaved_int(
          state,
          h.inPtr + inDone * frameBytes,
          h.lens,
          h.outPtr + outDone * frameBytes,
          h.lens + 4,
        );
        if (err !== 0) throw speexError(wasm, err);
        const took = wasm.HEAPU32[h.lens >> 2] ?? 0;
        const wrote = wasm.HEAPU32[(h.lens >> 2) + 1] ?? 0;
        if (took === 0 && wrote === 0) break;
        inDone += took;
        outDone += wrote;
      }
      const bytes = wasm.HEAPU8;
      return Buffer.from(bytes.buffer, bytes.byteOffset + h.outPtr, outDone * frameBytes);
    },
    release() {
      if (state === 0) return;
      wasm._speex_resampler_destroy(state);
      state = 0;
    },
  };
}
