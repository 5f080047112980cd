import { describe, expect, it } from 'vitest';
import {
  buildPli,
  buildRemb,
  findHeaderExtension,
  readRemb,
  type ExtensionSpan,
} from '../../src/media/webrtc/rtp.js';
import { RtpMunger } from '../../src/media/webrtc/rtp-munger.js';
import { Vp8Descriptor } from '../../src/media/webrtc/vp8-descriptor.js';

/** An RTP packet with a one-byte (0xBEDE) or two-byte (0x1000) header extension of `elements`. */
function rtpWithExtension(
  elements: Array<[number, Buffer]>,
  twoByte = false,
  payload = Buffer.from([1, 2, 3]),
): Buffer {
  const body: number[] = [];
  for (const [id, data] of elements) {
    if (twoByte) body.push(id, data.length, ...data);
    else body.push((id << 4) | (data.length - 1), ...data);
  }
  while (body.length % 4 !== 0) body.push(0);
  const header = Buffer.alloc(12);
  header[0] = 0x90; // V=2, X=1
  header[1] = 96;
  header.writeUInt16BE(1000, 2);
  header.writeUInt32BE(90_000, 4);
  header.writeUInt32BE(0x11223344, 8);
  const ext = Buffer.alloc(4);
  ext.writeUInt16BE(twoByte ? 0x1000 : 0xbede, 0);
  ext.writeUInt16BE(body.length / 4, 2);
  return Buffer.concat([header, ext, Buffer.from(body), payload]);
}

const text = (p: Buffer, s: ExtensionSpan): string =>
  p.subarray(s.offset, s.offset + s.length).toString('ascii');

describe('header extensions (RFC 8285)', () => {
  const span: ExtensionSpan = { offset: 0, length: 0 };

  it('finds the rid among other one-byte elements, and in the two-byte form', () => {
    const p = rtpWithExtension([
      [1, Buffer.from('0')],
      [3, Buffer.from([0xaa, 0xbb, 0xcc])],
      [10, Buffer.from('h')],
    ]);
    expect(findHeaderExtension(p, 10, span)).toBe(true);
    expect(text(p, span)).toBe('h');
    expect(findHeaderExtension(p, 1, span)).toBe(true);
    expect(text(p, span)).toBe('0');
    expect(findHeaderExtension(p, 4, span)).toBe(false);
    const two = rtpWithExtension([[20, Buffer.from('long-rid')]], true);
    expect(findHeaderExtension(two, 20, span)).toBe(true);
    expect(text(two, span)).toBe('long-rid');
  });

  it('bad input: no extension, a truncated block, an element past its end, unknown profile, stop id', () => {
    const plain = Buffer.alloc(20);
    plain[0] = 0x80;
    expect(findHeaderExtension(plain, 10, span)).toBe(false);
    const p = rtpWithExtension([[10, Buffer.from('f')]]);
    // The block says it is longer than the packet.
    const longer = Buffer.from(p);
    longer.writeUInt16BE(200, 14);
    expect(findHeaderExtension(longer, 10, span)).toBe(false);
    // Cut in the middle of the extension header.
    expect(findHeaderExtension(p.subarray(0, 14), 10, span)).toBe(false);
    // An element announcing more bytes than its block holds.
    const over = rtpWithExtension([[10, Buffer.from('f')]]);
    over[16] = (10 << 4) | 0x0f;
    expect(findHeaderExtension(over, 10, span)).toBe(false);
    const profile = Buffer.from(p);
    profile.writeUInt16BE(0x1234, 12);
    expect(findHeaderExtension(profile, 10, span)).toBe(false);
    const stop = rtpWithExtension([
      [15, Buffer.from('x')],
      [10, Buffer.from('f')],
    ]);
    expect(findHeaderExtension(stop, 10, span)).toBe(false);
    // A two-byte element whose length byte is cut off.
    const two = rtpWithExtension([[20, Buffer.from('ab')]], true);
    two.writeUInt16BE(0, 14);
    expect(findHeaderExtension(two, 20, span)).toBe(false);
    for (let n = 0; n < p.length; n++) findHeaderExtension(p.subarray(0, n), 10, span); // never throws
  });
});

describe('REMB', () => {
  it('reads back what it builds, inside a compound; -1 without one', () => {
    for (const bps of [0, 150_000, 1_234_567, 30_000_000]) {
      const remb = buildRemb(1, bps, [5, 6]);
      const read = readRemb(Buffer.concat([buildPli(1, 5), remb]));
      // The mantissa keeps 18 bits: exact below 262144, within 1e-5 above.
      expect(Math.abs(read - bps)).toBeLessThanOrEqual(bps * 1e-5 + 1);
    }
    expect(readRemb(buildPli(1, 2))).toBe(-1);
    expect(readRemb(buildRemb(1, 1000, []).subarray(0, 16))).toBe(-1);
  });
});

/** A VP8 RTP packet: 15-bit picture id and TL0PICIDX, a key frame's first packet when `key`. */
function vp8Packet(seq: number, ts: number, pictureId: number, tl0: number, key = false): Buffer {
  const p = Buffer.alloc(12 + 5 + 10);
  p[0] = 0x80;
  p[1] = 96;
  p.writeUInt16BE(seq, 2);
  p.writeUInt32BE(ts >>> 0, 4);
  p.writeUInt32BE(7, 8);
  p[12] = 0x90; // X=1, S=1, PID=0
  p[13] = 0xc0; // I and L
  p.writeUInt16BE(0x8000 | pictureId, 14);
  p[16] = tl0;
  p[17] = key ? 0x10 : 0x11; // P bit clear on a key frame
  return p;
}

describe('VP8 payload descriptor', () => {
  it('reads picture id, TL0PICIDX and the key frame bit; refuses truncated descriptors', () => {
    const d = new Vp8Descriptor();
    const key = vp8Packet(1, 0, 12345, 7, true);
    expect(d.read(key, 12)).toBe(true);
    expect(d.pictureId(key)).toBe(12345);
    expect(d.tl0(key)).toBe(7);
    expect(d.keyframe).toBe(true);
    expect(d.read(vp8Packet(1, 0, 1, 1, false), 12) && d.keyframe).toBe(false);
    for (let n = 13; n < 17; n++) expect(d.read(key.subarray(0, n), 12)).toBe(false);
    expect(d.read(key, 40)).toBe(false);
  });
});

describe('RtpMunger', () => {
  const d = new Vp8Descriptor();
  const send = (
    m: RtpMunger,
    p: Buffer,
    now: number,
  ): { seq: number; ts: number; pic: number; tl0: number } | undefined => {
    d.read(p, 12);
    if (!m.rewrite(p, p.readUInt16BE(2), p.readUInt32BE(4), d.pictureId(p), d.tl0(p), d, now))
      return undefined;
    return { seq: p.readUInt16BE(2), ts: p.readUInt32BE(4), pic: d.pictureId(p), tl0: d.tl0(p) };
  };

  it('keeps the first source as it is, and splices the next one on: seq +1, time by the clock, picture ids on', () => {
    const m = new RtpMunger(90_000);
    expect(send(m, vp8Packet(100, 1000, 50, 3, true), 0)).toEqual({ seq: 100, ts: 1000, pic: 50, tl0: 3 });
    expect(send(m, vp8Packet(101, 4000, 51, 4), 33)).toEqual({ seq: 101, ts: 4000, pic: 51, tl0: 4 });
    m.switchSource();
    // Another layer: its own numbers, 100 ms later.
    const out = send(m, vp8Packet(40_000, 777_777, 9000, 200, true), 133)!;
    expect(out).toEqual({ seq: 102, ts: 4000 + 9000, pic: 52, tl0: 5 });
    expect(send(m, vp8Packet(40_001, 777_777 + 3000, 9001, 201), 166)).toEqual({
      seq: 103,
      ts: 13_000 + 3000,
      pic: 53,
      tl0: 6,
    });
    // A late packet of the new source from before its run started: dropped.
    expect(send(m, vp8Packet(39_999, 774_777, 8999, 199), 170)).toBeUndefined();
    // A NACK of what was sent maps back to the source's numbers; others do not.
    expect(m.sourceSeq(103)).toBe(40_001);
    expect(m.sourceSeq(101)).toBe(-1);
    expect(m.sourceSeq(104)).toBe(-1);
  });

  it('wraps sequence numbers, timestamps, picture ids and TL0PICIDX around', () => {
    const m = new RtpMunger(90_000);
    send(m, vp8Packet(65_535, 0xffff_fff0, 0x7fff, 255, true), 0);
    m.switchSource();
    const out = send(m, vp8Packet(10, 5, 100, 9, true), 1)!;
    expect(out.seq).toBe(0);
    expect(out.ts).toBe((0xffff_fff0 + 90) >>> 0);
    expect(out.pic).toBe(0);
    expect(out.tl0).toBe(0);
    // In-run wrap of the source itself.
    const n = new RtpMunger(90_000);
    send(n, vp8Packet(65_534, 1, 1, 1, true), 0);
    expect(send(n, vp8Packet(65_535, 2, 2, 1), 1)!.seq).toBe(65_535);
    expect(send(n, vp8Packet(0, 3, 3, 1), 2)!.seq).toBe(0);
    expect(n.sourceSeq(0)).toBe(0);
    expect(n.sourceSeq(65_535)).toBe(65_535);
  });

  it('stays continuous over many switches back and forth', () => {
    const m = new RtpMunger(90_000);
    const layers = [
      { seq: 1000, ts: 10_000, pic: 10 },
      { seq: 60_000, ts: 4_000_000_000, pic: 30_000 },
    ];
    let lastSeq = -1;
    let lastTs = -1;
    let now = 0;
    for (let round = 0; round < 50; round++) {
      const l = layers[round % 2]!;
      if (round > 0) m.switchSource();
      for (let i = 0; i < 10; i++) {
        now += 33;
        for (const layer of layers) {
          layer.seq = (layer.seq + 1) & 0xffff;
          layer.ts = (layer.ts + 3000) >>> 0;
          layer.pic = (layer.pic + 1) & 0x7fff;
        }
        const out = send(m, vp8Packet(l.seq, l.ts, l.pic, 0, i === 0), now)!;
        if (lastSeq >= 0) {
          expect(out.seq).toBe((lastSeq + 1) & 0xffff);
          const dt = (out.ts - lastTs) >>> 0;
          expect(dt).toBeGreaterThan(0);
          expect(dt).toBeLessThanOrEqual(3000);
        }
        lastSeq = out.seq;
        lastTs = out.ts;
      }
    }
  });
});
