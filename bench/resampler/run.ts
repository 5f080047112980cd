// bench/resampler: quality and speed of the resampler VOIP uploads go through
// (src/media/audio/resampler.ts) on the rates clients send (8, 16, 44.1 kHz to 48 kHz).
// Quality: a pure tone is resampled in 20 ms chunks, as uploads arrive, and the output is
// fitted by least squares with a sine of the same frequency; SNR is the fitted sine's
// power over the residual's (noise, aliasing, images), the first and last 10 % skipped.
// Speed: 30 s of audio in 20 ms chunks; x realtime is audio seconds per wall second on
// one thread, the best of three runs.
//
// Other resamplers are measured beside it when installed (they are not dependencies):
//   npm install --no-save speex-resampler@3.0.1 @alexanderolsen/libsamplerate-js@2.1.2
//   npm run bench:resampler
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { acquireResampler, loadResampler } from '../../src/media/audio/resampler.js';

interface Instance {
  process(chunk: Buffer): Buffer;
  release(): void;
}
interface Candidate {
  name: string;
  create(channels: number, inRate: number, outRate: number): Promise<Instance>;
}

const OUT_RATE = 48_000;
const RATES = [8000, 16_000, 44_100];
// Frequencies that do not divide 48 kHz, so the quantization error is not periodic.
const TONES = [440, 997, 3011];

/** The previous dependency's API (CommonJS: its class is the default export). */
interface SpeexResamplerClass {
  initPromise: Promise<unknown>;
  new (
    channels: number,
    inRate: number,
    outRate: number,
    quality: number,
  ): { processChunk(b: Buffer): Buffer };
}
interface LibsamplerateModule {
  create(
    this: void,
    channels: number,
    inRate: number,
    outRate: number,
    options: { converterType: 0 | 1 | 2 },
  ): Promise<{ full(input: Float32Array): Float32Array; destroy(): void }>;
}

/** Optional packages, by a name TypeScript does not resolve (they may be absent). */
async function optional<T>(name: string): Promise<T | undefined> {
  try {
    return (await import(name)) as T;
  } catch {
    return undefined;
  }
}

async function candidates(): Promise<Candidate[]> {
  await loadResampler();
  const out: Candidate[] = [
    {
      name: 'chorus: @echogarden/speex-resampler-wasm (simd), quality 6',
      // Copies the result: the production resampler returns a view of its heap.
      create: async (c, i, o) => {
        const r = acquireResampler(c, i, o);
        return { process: (b) => Buffer.from(r.process(b)), release: () => r.release() };
      },
    },
    { name: 'linear interpolation (reference)', create: async (_c, i, o) => linear(i, o) },
  ];
  const speex = await optional<{ default: SpeexResamplerClass | { default: SpeexResamplerClass } }>(
    'speex-resampler',
  );
  if (speex) {
    const Speex = 'default' in speex.default ? speex.default.default : speex.default;
    await Speex.initPromise;
    out.push({
      name: 'speex-resampler 3.0.1, quality 6 (the previous dependency)',
      create: async (c, i, o) => {
        const r = new Speex(c, i, o, 6);
        return { process: (b) => r.processChunk(b), release: () => undefined };
      },
    });
  }
  const lsr = await optional<LibsamplerateModule & { default?: LibsamplerateModule }>(
    '@alexanderolsen/libsamplerate-js',
  );
  if (lsr) {
    const create = lsr.default?.create ?? lsr.create;
    for (const [type, label] of [
      [2, 'SINC_FASTEST'],
      [1, 'SINC_MEDIUM_QUALITY'],
      [0, 'SINC_BEST_QUALITY'],
    ] as const) {
      out.push({
        name: `@alexanderolsen/libsamplerate-js 2.1.2, ${label}`,
        create: async (c, i, o) => floatAdapter(await create(c, i, o, { converterType: type })),
      });
    }
  }
  return out;
}

/** libsamplerate works on floats: s16 in and out, as Chorus would have to convert. */
function floatAdapter(src: { full(input: Float32Array): Float32Array; destroy(): void }): Instance {
  let f = new Float32Array(0);
  return {
    process(b) {
      const n = b.length / 2;
      if (f.length !== n) f = new Float32Array(n);
      for (let k = 0; k < n; k++) f[k] = b.readInt16LE(2 * k) / 32768;
      const y = src.full(f);
      const out = Buffer.allocUnsafe(y.length * 2);
      for (let k = 0; k < y.length; k++) {
        out.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(y[k]! * 32768))), 2 * k);
      }
      return out;
    },
    release: () => src.destroy(),
  };
}

/** Mono linear interpolation, the cheapest thing that could be done. */
function linear(inRate: number, outRate: number): Instance {
  const step = inRate / outRate;
  let pos = 0;
  let prev = 0;
  return {
    process(b) {
      const n = b.length / 2;
      const out = Buffer.allocUnsafe(Math.ceil((n - pos) / step + 1) * 2);
      let w = 0;
      while (pos < n) {
        const k = Math.floor(pos);
        const t = pos - k;
        const a = k === 0 ? prev : b.readInt16LE(2 * (k - 1));
        const c = b.readInt16LE(2 * k);
        out.writeInt16LE(Math.round(a * (1 - t) + c * t), w);
        w += 2;
        pos += step;
      }
      pos -= n;
      prev = b.readInt16LE(2 * (n - 1));
      return out.subarray(0, w);
    },
    release: () => undefined,
  };
}

function tone(rate: number, freq: number, seconds: number): Buffer {
  const n = Math.round(rate * seconds);
  const b = Buffer.alloc(n * 2);
  for (let k = 0; k < n; k++)
    b.writeInt16LE(Math.round(16_000 * Math.sin((2 * Math.PI * freq * k) / rate)), 2 * k);
  return b;
}

function snrDb(out: Buffer, rate: number, freq: number): number {
  const n = out.length / 2;
  const from = Math.floor(n * 0.1);
  const to = n - from;
  const w = (2 * Math.PI * freq) / rate;
  let ss = 0;
  let sc = 0;
  let cc = 0;
  let ys = 0;
  let yc = 0;
  for (let k = from; k < to; k++) {
    const s = Math.sin(w * k);
    const c = Math.cos(w * k);
    const y = out.readInt16LE(2 * k);
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
    noise += (out.readInt16LE(2 * k) - fit) ** 2;
  }
  return 10 * Math.log10(signal / noise);
}

function run(r: Instance, input: Buffer, chunkBytes: number): Buffer {
  const parts: Buffer[] = [];
  for (let k = 0; k < input.length; k += chunkBytes) parts.push(r.process(input.subarray(k, k + chunkBytes)));
  return Buffer.concat(parts);
}

console.log(
  JSON.stringify({
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    node: process.version,
    outRate: OUT_RATE,
  }),
);
for (const c of await candidates()) {
  const row: Record<string, unknown> = { resampler: c.name };
  for (const rate of RATES) {
    const chunk = (rate / 50) * 2;
    const snr: number[] = [];
    for (const f of TONES) {
      const r = await c.create(1, rate, OUT_RATE);
      snr.push(snrDb(run(r, tone(rate, f, 2), chunk), OUT_RATE, f));
      r.release();
    }
    const input = tone(rate, 997, 30);
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const r = await c.create(1, rate, OUT_RATE);
      const t0 = performance.now();
      run(r, input, chunk);
      best = Math.min(best, performance.now() - t0);
      r.release();
    }
    row[`${rate / 1000} kHz`] = {
      snrDb: Object.fromEntries(TONES.map((f, i) => [`${f} Hz`, Number(snr[i]!.toFixed(1))])),
      xRealtime: Math.round(30_000 / best),
    };
  }
  console.log(JSON.stringify(row));
}
