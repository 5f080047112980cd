import { describe, expect, it } from 'vitest';
import { GopCache } from '../../src/media/stream/gop-cache.js';
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

/** Pushes `data` in pieces of `size` bytes and returns what a late joiner is replayed. */
function replay(data: Buffer, size: number, mode: 'auto' | 'all' = 'auto'): Buffer {
  const c = new GopCache(64 << 20, mode);
  for (let p = 0; p < data.length; p += size) c.push(data.subarray(p, p + size));
  const out: Buffer[] = [];
  c.forEach((b) => out.push(b));
  return Buffer.concat(out);
}

const SIZES = [1, 7, 188, 1000, 1 << 20];

describe('the container-aware cache: WebM', () => {
  const header = webmHeader();
  const c0 = cluster(0, [
    simpleBlock(VIDEO, true, 1),
    simpleBlock(AUDIO, true, 2),
    simpleBlock(VIDEO, false, 3),
  ]);
  // Starts with audio; its first video block is a keyframe: the cut is the Cluster.
  const c1 = cluster(1000, [
    simpleBlock(AUDIO, true, 4),
    simpleBlock(VIDEO, true, 5),
    simpleBlock(VIDEO, false, 6),
  ]);
  const c2 = cluster(2000, [simpleBlock(VIDEO, false, 7), simpleBlock(AUDIO, true, 8)]);

  it('keeps the header and the clusters from the last keyframe cluster (unknown sizes, as MediaRecorder writes)', () => {
    const stream = Buffer.concat([header, c0, c1, c2]);
    for (const size of SIZES)
      expect(replay(stream, size).equals(Buffer.concat([header, c1, c2])), `size ${size}`).toBe(true);
  });

  it('cuts inside a cluster at a keyframe block, behind a new cluster header with the same timecode', () => {
    const key = simpleBlock(VIDEO, true, 9);
    const tail = simpleBlock(VIDEO, false, 10);
    // Known size, as ffmpeg's live output writes them: the keyframe is the Cluster's second video block.
    const c3 = cluster(3000, [simpleBlock(VIDEO, false, 11), simpleBlock(AUDIO, true, 12), key, tail], true);
    const stream = Buffer.concat([header, c0, c1, c3]);
    const resume = Buffer.from([
      0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xe7, 0x86, 0, 0, 0, 0, 0x0b,
      0xb8,
    ]);
    for (const size of SIZES) {
      expect(replay(stream, size).equals(Buffer.concat([header, resume, key, tail])), `size ${size}`).toBe(
        true,
      );
    }
  });

  it('reads keyframes in BlockGroups (no ReferenceBlock) and ignores non-key ones', () => {
    const g1 = cluster(1000, [blockGroup(VIDEO, false, 1), blockGroup(AUDIO, true, 2)]);
    const g2 = cluster(2000, [blockGroup(VIDEO, true, 3), blockGroup(VIDEO, false, 4)]);
    const g3 = cluster(3000, [blockGroup(VIDEO, false, 5)]);
    const stream = Buffer.concat([header, c0, g1, g2, g3]);
    for (const size of SIZES)
      expect(replay(stream, size).equals(Buffer.concat([header, g2, g3])), `size ${size}`).toBe(true);
  });

  it('STREAM_CACHE_MODE=all, and a stream that is not WebM after its first byte, are cached whole', () => {
    const stream = Buffer.concat([header, c0, c1, c2]);
    expect(replay(stream, 100, 'all').equals(stream)).toBe(true);
    const fake = Buffer.concat([Buffer.from([0x1a, 0x00, 0x00]), c0, c1]);
    expect(replay(fake, 100).equals(fake)).toBe(true);
  });

  it('a probe gets the header; the counts include it', () => {
    const c = new GopCache(64 << 20);
    c.push(Buffer.concat([header, c0, c1, c2]));
    expect(c.first()!.equals(header)).toBe(true);
    expect(c.format).toBe('webm');
    expect(c.count).toBe(2);
    expect(c.size).toBe(header.length + 16 + c1.length + c2.length + 16);
  });
});

describe('the container-aware cache: MPEG-TS', () => {
  const psi = Buffer.concat([pat(), pmt()]);

  it('keeps PAT and PMT and the packets from the last random access indicator', () => {
    const gop1 = Buffer.concat([
      videoStart(5, true, 1),
      videoMore(2),
      audioStart(3),
      videoStart(1, false, 4),
    ]);
    const gop2 = Buffer.concat([
      videoStart(5, true, 5),
      audioStart(6),
      videoMore(7),
      videoStart(1, false, 8),
    ]);
    const stream = Buffer.concat([psi, gop1, psi, gop2]);
    for (const size of SIZES)
      expect(replay(stream, size).equals(Buffer.concat([psi, gop2])), `size ${size}`).toBe(true);
  });

  it('without random access indicators, starts at an H.264 IDR', () => {
    const gop1 = Buffer.concat([videoStart(5, false, 1), videoStart(1, false, 2)]);
    const gop2 = Buffer.concat([videoStart(5, false, 3), audioStart(4), videoStart(1, false, 5)]);
    const stream = Buffer.concat([psi, gop1, gop2]);
    for (const size of SIZES)
      expect(replay(stream, size).equals(Buffer.concat([psi, gop2])), `size ${size}`).toBe(true);
  });

  it('once the muxer sets random access indicators, trusts only them (an SPS repeated on every frame is no keyframe)', () => {
    const gop1 = Buffer.concat([videoStart(7, true, 1), videoStart(7, false, 2), videoStart(7, false, 3)]);
    const stream = Buffer.concat([psi, gop1]);
    expect(replay(stream, 188).equals(Buffer.concat([psi, gop1]))).toBe(true);
  });

  it('gives up on a lost sync byte and keeps everything from then on', () => {
    const gop1 = Buffer.concat([videoStart(5, true, 1), videoMore(2)]);
    const broken = Buffer.alloc(188, 0x00);
    const rest = Buffer.concat([videoStart(5, true, 3), videoMore(4)]);
    const stream = Buffer.concat([psi, gop1, broken, rest]);
    expect(replay(stream, 188).equals(Buffer.concat([psi, gop1, broken, rest]))).toBe(true);
  });
});
