import { describe, expect, it } from 'vitest';
import { AudioMixer, newAudioCounters } from '../../src/media/audio/audio-mixer.js';
import type { FeedFormat } from '../../src/media/audio/mix-feed.js';
import { MixReads } from '../../src/media/audio/mix-reads.js';
import { readMix } from '../../src/media/audio/mix-source.js';
import { FRAME_SAMPLES } from '../../src/media/audio/pcm-frame.js';
import { PcmInput } from '../../src/media/audio/pcm-input.js';
import { dominantFrequency, ffmpegDecode, powerAt, samplesOf, ToneSource } from '../fixtures/audio.js';
import { LIVE_STREAM_COMPLAINTS, opusinfo } from '../fixtures/opusinfo.js';
import { hasTool } from '../fixtures/system-tools.js';

const haveFfmpeg = hasTool('ffmpeg', 'ffmpeg');
const haveOpusinfo = hasTool('opusinfo', 'opus-tools');

function mixer(backlogPackets = 0) {
  const counters = newAudioCounters();
  const m = new AudioMixer({
    opus: { bitrate: 32_000, complexity: 5 },
    backlogPackets,
    counters,
    onListenerError: (err) => {
      throw err;
    },
  });
  return { m, counters };
}

/** Lets the event loop run `n` turns (a flush's writes go out a slice per turn). */
async function nextTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** A sink keeping what it was written, chunk by chunk (the Buffers themselves). */
function sink() {
  const chunks: Uint8Array[] = [];
  return { chunks, write: (c: Uint8Array) => void chunks.push(c), bytes: () => Buffer.concat(chunks) };
}

interface OggPage {
  type: number;
  granule: bigint;
  serial: number;
  sequence: number;
  crcOk: boolean;
}

const CRC = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

/** Splits an Ogg stream into its pages, checking each page's CRC. */
function oggPages(b: Buffer): OggPage[] {
  const pages: OggPage[] = [];
  let at = 0;
  while (at < b.length) {
    expect(b.toString('latin1', at, at + 4)).toBe('OggS');
    const segments = b[at + 26]!;
    let body = 0;
    for (let i = 0; i < segments; i++) body += b[at + 27 + i]!;
    const end = at + 27 + segments + body;
    const page = Buffer.from(b.subarray(at, end));
    const crc = page.readUInt32LE(22);
    page.writeUInt32LE(0, 22);
    let c = 0;
    for (const byte of page) c = ((c << 8) ^ CRC[((c >>> 24) ^ byte) & 0xff]!) >>> 0;
    pages.push({
      type: b[at + 5]!,
      granule: b.readBigInt64LE(at + 6),
      serial: b.readUInt32LE(at + 14),
      sequence: b.readUInt32LE(at + 18),
      crcOk: c === crc,
    });
    at = end;
  }
  return pages;
}

/** A stream every player reads: BOS first, one serial, page numbers without a gap, granules rising. */
function expectWellFormed(pages: OggPage[]): void {
  expect(pages[0]!.type).toBe(2);
  expect(pages[0]!.granule).toBe(0n);
  expect(pages[1]!.granule).toBe(0n);
  for (let i = 1; i < pages.length; i++) {
    expect(pages[i]!.type).toBe(0);
    expect(pages[i]!.serial).toBe(pages[0]!.serial);
    expect(pages[i]!.sequence).toBe(pages[i - 1]!.sequence + 1);
    if (i >= 3) expect(pages[i]!.granule).toBeGreaterThan(pages[i - 1]!.granule);
  }
  expect(pages.every((p) => p.crcOk)).toBe(true);
}

describe('MixFeed: listeners of one mix share the work', () => {
  it('encodes once and builds one page per flush for any number of Ogg listeners, the same Buffer for all', async () => {
    const { m, counters } = mixer();
    const a = new PcmInput();
    m.addInput('a', a);
    const tone = new ToneSource(440);
    const listeners = Array.from({ length: 200 }, () => sink());
    listeners.forEach((s, i) => m.read(`listener-${i}`, 'ogg', s, 1));
    const before = { ...counters };
    for (let t = 0; t < 50; t++) {
      a.write(tone.next(20));
      m.tick();
      await nextTurns(2); // a flush's writes go a slice per turn
    }
    // One mix (a speaks; nobody listening speaks): one encode and one page a tick.
    expect(counters.encodes - before.encodes).toBe(50);
    expect(counters.oggPages - before.oggPages).toBe(50);
    const last = listeners[0]!.chunks.at(-1)!;
    for (const s of listeners) expect(s.chunks.at(-1)).toBe(last);
    m.close();
  });

  it('writes a flush a slice per turn, each listener once and in order; one who leaves in between gets nothing more', async () => {
    const { m } = mixer(25);
    const a = new PcmInput();
    m.addInput('a', a);
    const tone = new ToneSource(440);
    const listeners = Array.from({ length: 400 }, () => sink());
    const readers = listeners.map((s, i) => m.read(`listener-${i}`, 'ogg', s, 2));
    const counts = () => listeners.map((s) => s.chunks.length);
    const start = counts();
    for (let t = 0; t < 2; t++) {
      a.write(tone.next(20));
      m.tick();
    }
    // The flush's first slice is written at once, the rest in the next turns.
    const now = counts();
    const written = now.filter((n, i) => n > start[i]!).length;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(listeners.length);
    // Between slices: a joiner (its intro already ends with this flush's packets, so it
    // is not owed the page) and a leaver not yet written (written nothing more).
    const joiner = sink();
    m.read('joiner', 'ogg', joiner, 2);
    const leaver = listeners.length - 1;
    expect(now[leaver]).toBe(start[leaver]);
    readers[leaver]!.close();
    await nextTurns(listeners.length);
    const after = counts();
    for (let i = 0; i < leaver; i++) expect(after[i]).toBe(start[i]! + 1);
    expect(after[leaver]).toBe(start[leaver]);
    // Flushes that come while the one before is still being written (ticks caught up
    // in one turn): a reader still owed one gets both in order; every stream stays
    // whole, no page lost or repeated.
    for (let t = 0; t < 20; t++) {
      a.write(tone.next(20));
      m.tick();
    }
    await nextTurns(listeners.length);
    for (const s of [...listeners.slice(0, leaver), joiner]) expectWellFormed(oggPages(s.bytes()));
    const [j, l] = [oggPages(joiner.bytes()).at(-1)!, oggPages(listeners[0]!.bytes()).at(-1)!];
    expect([j.serial, j.granule]).toEqual([l.serial, l.granule]);
    m.close();
  });

  it('gives a late Ogg joiner its own headers and the backlog, numbered into the shared pages', async () => {
    const { m, counters } = mixer(25);
    const a = new PcmInput();
    m.addInput('a', a);
    const tone = new ToneSource(440);
    const early = sink();
    m.read('early', 'ogg', early, 2);
    const late = sink();
    const later = sink();
    for (let t = 0; t < 150; t++) {
      if (t === 77) m.read('late', 'ogg', late, 2);
      if (t === 91) m.read('later', 'ogg', later, 2);
      a.write(tone.next(20));
      m.tick();
    }
    const earlyPages = oggPages(early.bytes());
    const latePages = oggPages(late.bytes());
    expectWellFormed(earlyPages);
    expectWellFormed(latePages);
    expectWellFormed(oggPages(later.bytes()));
    // Each starts at page 0; after the headers and backlog the pages carry the same audio
    // and granule, numbered on from each reader's own.
    const [e, l] = [earlyPages.at(-1)!, latePages.at(-1)!];
    expect([l.serial, l.granule]).toEqual([e.serial, e.granule]);
    expect(Buffer.from(late.chunks.at(-1)!).subarray(27)).toEqual(
      Buffer.from(early.chunks.at(-1)!).subarray(27),
    );
    // Joined within the backlog's length of each other: their backlogs were paginated to
    // bring them to the same page numbers, and they share each page Buffer.
    expect(later.chunks.at(-1)).toBe(late.chunks.at(-1));
    expect(oggPages(later.bytes()).at(-1)).toEqual(l);
    // Pages built: one per flush for the shared stream, however many read it.
    expect(counters.oggPages).toBe(75);
    // The backlog is the 25 packets before the join: the late stream starts 25 ticks early.
    const lateStart = latePages[2]!.granule - 25n * BigInt(FRAME_SAMPLES);
    expect(lateStart).toBeGreaterThan(0n);
    if (haveFfmpeg) {
      const decoded = await ffmpegDecode(late.bytes(), 'ogg');
      expect(decoded.length).toBeGreaterThan(48_000);
      expect(dominantFrequency(decoded.subarray(decoded.length - 48_000))).toBe(440);
    }
    if (haveOpusinfo) {
      const { complaints } = await opusinfo(late.bytes(), 'late.opus');
      expect(complaints).toEqual(LIVE_STREAM_COMPLAINTS);
    }
    m.close();
  });

  it('moves a listener who starts speaking to the mix without them; its Ogg stream runs on', async () => {
    const { m, counters } = mixer();
    const a = new PcmInput();
    m.addInput('a', a);
    const toneA = new ToneSource(440);
    const toneB = new ToneSource(1000);
    const heardByB = sink();
    const heardByL = sink();
    m.read('b', 'ogg', heardByB, 1);
    m.read('l', 'ogg', heardByL, 1);
    const b = new PcmInput();
    for (let t = 0; t < 150; t++) {
      if (t === 40) m.addInput('b', b);
      a.write(toneA.next(20));
      if (t >= 40) b.write(toneB.next(20));
      m.tick();
    }
    expect(m.mixes).toBe(2);
    const pagesB = oggPages(heardByB.bytes());
    expectWellFormed(pagesB);
    expect(pagesB).toHaveLength(2 + 150);
    const before = counters.oggPages;
    m.tick();
    // b's page is its own from the move on; l still reads the shared one.
    expect(counters.oggPages - before).toBe(1);
    if (haveFfmpeg) {
      const byB = await ffmpegDecode(heardByB.bytes(), 'ogg');
      const tailB = byB.subarray(byB.length - 48_000);
      expect(powerAt(tailB, 440)).toBeGreaterThan(100 * powerAt(tailB, 1000));
      const byL = await ffmpegDecode(heardByL.bytes(), 'ogg');
      const tailL = byL.subarray(byL.length - 48_000);
      expect(powerAt(tailL, 1000)).toBeGreaterThan(0.3 * powerAt(tailL, 440));
    }
    m.close();
  });

  it('shares one PCM chunk per flush between WAV listeners, and the packet between Opus ones', () => {
    const { m, counters } = mixer();
    const a = new PcmInput();
    m.addInput('a', a);
    const tone = new ToneSource(440);
    const wavs = [sink(), sink(), sink()];
    const opus = [sink(), sink()];
    for (const s of wavs) m.read(undefined, 'wav', s, 5);
    for (const s of opus) m.read(undefined, 'opus', s, 5);
    for (let t = 0; t < 100; t++) {
      a.write(tone.next(20));
      m.tick();
    }
    expect(counters.wavChunks).toBe(20);
    expect(wavs[0]!.chunks).toHaveLength(1 + 20);
    expect(wavs[1]!.chunks.at(-1)).toBe(wavs[0]!.chunks.at(-1));
    expect(opus[0]!.chunks).toHaveLength(100);
    expect(opus[1]!.chunks.at(-1)).toBe(opus[0]!.chunks.at(-1));
    const pcm = samplesOf(wavs[2]!.bytes().subarray(44));
    expect(pcm.length).toBe(100 * FRAME_SAMPLES);
    expect(dominantFrequency(pcm.subarray(48_000))).toBe(440);
    m.close();
  });

  it('drops a listener whose sink throws, and only that one', () => {
    const errors: unknown[] = [];
    const m = new AudioMixer({
      opus: { bitrate: 32_000, complexity: 5 },
      backlogPackets: 0,
      onListenerError: (err) => errors.push(err),
    });
    const good = sink();
    m.read('good', 'ogg', good, 1);
    m.read('bad', 'ogg', {
      write: (c) => {
        if (c[5] === 0) throw new Error('socket gone'); // audio pages, not the headers
      },
    });
    for (let t = 0; t < 5; t++) m.tick();
    expect(errors).toHaveLength(1);
    expect(good.chunks).toHaveLength(1 + 5);
    expect(m.listenerCount).toBe(1);
    m.close();
  });

  it('closes a feed with its last reader, and counts readers as listeners', () => {
    const { m } = mixer();
    const readers = (['ogg', 'wav', 'opus'] as FeedFormat[]).map((f) => m.read('x', f, sink(), 1));
    expect(m.listenerCount).toBe(3);
    expect(m.mixes).toBe(1);
    for (const r of readers) r.close();
    readers[0]!.close(); // twice: harmless
    expect(m.listenerCount).toBe(0);
    expect(m.mixes).toBe(0);
    expect(m.idle).toBe(true);
  });

  it('serves a source without shared feeds through a feed of the stream`s own', async () => {
    const { m } = mixer(10);
    const a = new PcmInput();
    m.addInput('a', a);
    const tone = new ToneSource(440);
    for (let t = 0; t < 20; t++) {
      a.write(tone.next(20));
      m.tick();
    }
    const heard = sink();
    // Only `listen`, as a relay of another node's mixer may offer.
    const reader = readMix({ listen: (l, s) => m.listen(l, s) }, 'l', 'ogg', heard, 1);
    for (let t = 0; t < 100; t++) {
      a.write(tone.next(20));
      m.tick();
    }
    const pages = oggPages(heard.bytes());
    expectWellFormed(pages);
    expect(pages).toHaveLength(2 + 1 + 100);
    if (haveFfmpeg) expect(dominantFrequency(await ffmpegDecode(heard.bytes(), 'ogg'))).toBe(440);
    reader.close();
    expect(m.listenerCount).toBe(0);
    m.close();
  });
});

describe('MixReads: shared streams over a source that only offers listen()', () => {
  it('gives non-speakers one shared feed, and moves a reader whose listener speaks', async () => {
    const { m, counters } = mixer(10);
    const a = new PcmInput();
    m.addInput('a', a);
    let listeners = 0;
    // Only `listen`, as a relay of another node's mixer offers; counts its listeners.
    const reads = new MixReads({
      listen: (l, s) => {
        listeners++;
        return m.listen(l, s);
      },
      backlogPackets: 10,
      counters,
    });
    const toneA = new ToneSource(440);
    const toneB = new ToneSource(1000);
    const many = Array.from({ length: 20 }, () => sink());
    many.forEach((s, i) => reads.read(`l${i}`, 'ogg', s, 1));
    const heardByB = sink();
    reads.read('b', 'ogg', heardByB, 1);
    expect(listeners).toBe(1);
    const b = new PcmInput();
    for (let t = 0; t < 120; t++) {
      if (t === 30) {
        m.addInput('b', b);
        reads.speaking('b');
        reads.speaking('a'); // nobody waits on a: nothing moves
      }
      a.write(toneA.next(20));
      if (t >= 30) b.write(toneB.next(20));
      const before = counters.oggPages;
      m.tick();
      // One shared page for the 20 (b's own, once moved, is b's alone and not counted).
      expect(counters.oggPages - before).toBe(1);
    }
    expect(listeners).toBe(2);
    expect(many[19]!.chunks.at(-1)).toBe(many[0]!.chunks.at(-1));
    const pagesB = oggPages(heardByB.bytes());
    expectWellFormed(pagesB);
    if (haveFfmpeg) {
      const byB = await ffmpegDecode(heardByB.bytes(), 'ogg');
      const tail = byB.subarray(byB.length - 48_000);
      expect(powerAt(tail, 440)).toBeGreaterThan(100 * powerAt(tail, 1000));
    }
    reads.close();
    expect(m.listenerCount).toBe(0);
    m.close();
  });
});
