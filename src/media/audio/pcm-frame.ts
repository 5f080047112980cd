/**
 * The engine's audio unit: 20 ms of signed 16-bit mono PCM at 48 kHz. Everything that
 * enters a mixer is converted to this, everything that leaves is encoded from it.
 */
export const SAMPLE_RATE = 48_000;
export const FRAME_MS = 20;
export const FRAME_SAMPLES = (SAMPLE_RATE / 1000) * FRAME_MS;
export const FRAME_BYTES = FRAME_SAMPLES * 2;

/** A PCM frame viewed as bytes (s16le on every platform Node runs on), without a copy. */
export function frameBytes(frame: Int16Array): Buffer {
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}
