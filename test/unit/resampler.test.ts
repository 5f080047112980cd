import { describe, expect, it } from 'vitest';
import { tone } from '../fixtures/audio.js';

/** SNR of `pcm` against the best-fitting sine at `freq` (least squares), in dB. */
function snrDb(pcm: Buffer, freq: number, rate = 48_000): number {
  const n = pcm.length / 2;
  const from = Math.floor(n * 0.1);
  const to = n - from;
  const w = (2 * Math.PI * freq) / rate;
  let ss = 0;
  let sc = 0;
  let cc = 0;
  let ys = 0;
  let yc = 0;
  for (let k = from; k < to; k++) {
    const [s, c, y] = [Math.sin(w * k), Math.cos(w * k), pcm.readInt16LE(2 * k)];
    ss += s * s;
    sc += s * c;
    cc += c * c;
    ys += y * s;
    yc += y * c;
  }
  const det = ss * cc - sc * sc;
  const a = (ys * cc - yc * sc) / det;
  const b = (yc * ss - ys * sc) / det;
  let signal = 0;
  let noise = 0;
  for (let k = from; k < to; k++) {
    const fit = a * Math.sin(w * k) + b * Math.cos(w * k);
    signal += fit * fit;
    noise += (pcm.readInt16LE(2 * k) - fit) ** 2;
  }
  return 10 * Math.log10(signal / noise);
}

describe('resampler', () => {
  // The previous library (speex-resampler) installed an uncaughtException handler that
  // rethrew and an unhandledRejection handler that aborted, as soon as it was imported.
  it('adds no process-wide error handlers when imported and loaded', async () => {
    const before = {
      exception: process.listenerCount('uncaughtException'),
      rejection: process.listenerCount('unhandledRejection'),
    };
    const { loadResampler } = await import('../../src/media/audio/resampler.js');
    await loadResampler();
    expect({
      exception: process.listenerCount('uncaughtException'),
      rejection: process.listenerCount('unhandledRejection'),
    }).toEqual(before);
  });

  it('converts 16 kHz to 48 kHz in 20 ms chunks at over 85 dB SNR (a 16-bit floor is about 90)', async () => {
    const { acquireResampler, loadResampler } = await import('../../src/media/audio/resampler.js');
    await loadResampler();
    const r = acquireResampler(1, 16_000);
    const input = tone(997, 2000, 16_000, 16_000);
    const parts: Buffer[] = [];
    // Copy each result: it is a view of the resampler's memory until the next call.
    for (let at = 0; at < input.length; at += 640)
      parts.push(Buffer.from(r.process(input.subarray(at, at + 640))));
    r.release();
    const out = Buffer.concat(parts);
    expect(out.length / 2).toBeGreaterThan(0.99 * 96_000 - 200);
    expect(snrDb(out, 997)).toBeGreaterThan(85);
  });

  it('frees its state on release: release is idempotent and a released resampler refuses work', async () => {
    const { acquireResampler, loadResampler } = await import('../../src/media/audio/resampler.js');
    await loadResampler();
    const r = acquireResampler(2, 44_100);
    expect(r.process(tone(440, 20, 44_100, 8000, 2)).length).toBeGreaterThan(0);
    r.release();
    r.release();
    expect(() => r.process(tone(440, 20, 44_100, 8000, 2))).toThrow(/after release/);
  });
});
