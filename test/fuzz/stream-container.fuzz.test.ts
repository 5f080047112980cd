import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GopCache } from '../../src/media/stream/gop-cache.js';
import { MpegTsIndex } from '../../src/media/stream/mpegts-index.js';
import { WebmIndex } from '../../src/media/stream/webm-index.js';
import {
  AUDIO,
  VIDEO,
  audioStart,
  blockGroup,
  cluster,
  pat,
  pmt,
  simpleBlock,
  videoMore,
  videoStart,
  webmHeader,
} from '../fixtures/container-bytes.js';

// The stream cache's container readers see whatever a publisher sends, split wherever
// the publisher's WebSocket messages end. Whatever the bytes, they never throw, and what
// a late joiner is replayed depends on the bytes only, never on where the chunks end.

/** A WebM stream of random clusters (unknown or known size, SimpleBlocks or BlockGroups). */
const webmStream = fc
  .array(
    fc.record({
      known: fc.boolean(),
      blocks: fc.array(
        fc.record({
          video: fc.boolean(),
          key: fc.boolean(),
          group: fc.boolean(),
          length: fc.integer({ min: 0, max: 300 }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
    }),
    { minLength: 1, maxLength: 8 },
  )
  .map((clusters) =>
    Buffer.concat([
      webmHeader(),
      ...clusters.map((c, i) =>
        cluster(
          i * 1000,
          c.blocks.map((b, j) =>
            (b.group ? blockGroup : simpleBlock)(
              b.video ? VIDEO : AUDIO,
              b.key,
              (i * 16 + j) & 0xff,
              b.length,
            ),
          ),
          c.known,
        ),
      ),
    ]),
  );

/** An MPEG-TS stream of random video and audio packets, with PSI repeated now and then. */
const tsStream = fc
  .array(fc.constantFrom('idr-rai', 'idr', 'p', 'more', 'audio', 'psi'), { minLength: 1, maxLength: 40 })
  .map((kinds) =>
    Buffer.concat([
      pat(),
      pmt(),
      ...kinds.map((k, i) => {
        switch (k) {
          case 'idr-rai':
            return videoStart(5, true, i);
          case 'idr':
            return videoStart(5, false, i);
          case 'p':
            return videoStart(1, false, i);
          case 'more':
            return videoMore(i);
          case 'audio':
            return audioStart(i);
          case 'psi':
            return Buffer.concat([pat(), pmt()]);
        }
      }),
    ]),
  );

/** Cut points for splitting a stream into chunks. */
const splits = fc.array(fc.integer({ min: 0, max: 1 << 16 }), { maxLength: 30 });

function pieces(data: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, data.length]) {
    if (c > from) out.push(data.subarray(from, c));
    from = Math.max(from, c);
  }
  return out;
}

function replay(chunks: Buffer[]): Buffer {
  const c = new GopCache(64 << 20);
  for (const b of chunks) c.push(b);
  const out: Buffer[] = [];
  c.forEach((b) => out.push(b));
  return Buffer.concat(out);
}

/** Flips some bytes (and maybe truncates) so near-valid input reaches deep states. */
const mutated = (stream: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> =>
  fc
    .tuple(stream, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
    .map(([data, flips, cut]) => {
      const b = Buffer.from(data);
      for (const [at, v] of flips) b[at % b.length] = v;
      return b.subarray(0, b.length - (cut % Math.max(1, b.length >> 2)));
    });

describe('stream container readers (fuzz)', () => {
  it('never throw on any bytes, in any chunking', () => {
    const anyBytes = fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(
        fc.oneof(
          anyBytes,
          anyBytes.map((b) => Buffer.concat([Buffer.from([0x1a]), b])),
          anyBytes.map((b) => Buffer.concat([Buffer.from([0x47]), b])),
          mutated(webmStream),
          mutated(tsStream),
        ),
        splits,
        (data, cuts) => {
          const chunks = pieces(data, cuts);
          for (const index of [new WebmIndex(), new MpegTsIndex()]) {
            let at = 0;
            for (const c of chunks) {
              index.scan(c, at);
              at += c.length;
              expect(index.cutAt).toBeLessThanOrEqual(at);
            }
          }
          // The replay is never longer than what was published plus the headers it adds.
          expect(replay(chunks).length).toBeLessThanOrEqual(data.length * 2 + 64);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('replays the same bytes however the stream is split (WebM and MPEG-TS, valid or damaged)', () => {
    fc.assert(
      fc.property(
        fc.oneof(webmStream, tsStream, mutated(webmStream), mutated(tsStream)),
        splits,
        (data, cuts) => {
          expect(replay(pieces(data, cuts)).equals(replay([data]))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a valid stream is replayed as its header, then (maybe a Cluster header, then) the rest of the stream from some point', () => {
    fc.assert(
      fc.property(fc.oneof(webmStream, tsStream), splits, (data, cuts) => {
        const c = new GopCache(64 << 20);
        for (const b of pieces(data, cuts)) c.push(b);
        const out: Buffer[] = [];
        c.forEach((b) => out.push(b));
        const all = Buffer.concat(out);
        const init = c.first()!;
        expect(all.subarray(0, init.length).equals(init)).toBe(true);
        let media = all.subarray(init.length);
        // A cut inside a WebM Cluster: a new Cluster header of unknown size and its Timecode.
        if (media.subarray(0, 12).equals(Buffer.from('1f43b67501ffffffffffffff', 'hex')))
          media = media.subarray(20);
        expect(data.subarray(data.length - media.length).equals(media)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
