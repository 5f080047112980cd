import { SAMPLE_RATE } from './pcm-frame.js';

/**
 * The 44-byte header of an endless PCM WAV stream: RIFF and data sizes are 0xFFFFFFFF,
 * which ffmpeg reads to the end, Chrome plays as infinite and Firefox as 4 GiB long
 * (Firefox refuses a size of 0). See INTEROP.md.
 */
export function endlessWavHeader(sampleRate = SAMPLE_RATE, channels = 1): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(0xffffffff, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(0xffffffff, 40);
  return h;
}
