// Types for the part of the speexdsp resampler's WASM build that Chorus calls (the
// package ships none). Pointers are byte offsets into the module's heap; the HEAP views
// are replaced when the heap grows, so they must be read from the module on each use.
declare module '@echogarden/speex-resampler-wasm/simd' {
  export interface SpeexWasm {
    readonly HEAPU8: Uint8Array;
    readonly HEAPU32: Uint32Array;
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    /** Returns the state pointer (0 on error, with the error code written at errPtr). */
    _speex_resampler_init(
      channels: number,
      inRate: number,
      outRate: number,
      quality: number,
      errPtr: number,
    ): number;
    _speex_resampler_destroy(state: number): void;
    /** In/out lengths are frames per channel, read and written back through the pointers. */
    _speex_resampler_process_interleaved_int(
      state: number,
      inPtr: number,
      inLenPtr: number,
      outPtr: number,
      outLenPtr: number,
    ): number;
    _speex_resampler_strerror(code: number): number;
  }
  const factory: () => Promise<SpeexWasm>;
  export default factory;
}
