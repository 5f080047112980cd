import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildNack,
  buildPli,
  buildReceiverReport,
  findReceptionReport,
  forEachNackedSeq,
  isRtcp,
  rtpPayload,
  wantsKeyframe,
  type ReceptionReport,
} from '../../src/media/webrtc/rtp.js';

// RTP/RTCP parsing of what peers send (src/media/webrtc/rtp.ts): random, truncated and
// spliced buffers never throw, and every answer stays inside the packet.

const SSRC = 0x01020304;

/**
 * The bytes as a view into a larger buffer full of 0xAB: a parser that read past the
 * view's end through `readUInt*` throws (caught by the property), and through indexing
 * gets undefined, which shows as NaN in what it returns.
 */
function embedded(bytes: Uint8Array): Buffer {
  const backing = Buffer.alloc(bytes.length + 64, 0xab);
  backing.set(bytes, 32);
  return backing.subarray(32, 32 + bytes.length);
}

const validRtcp = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }))
    .map(([seq, blp]) => buildNack(7, SSRC, seq, blp)),
  fc.constant(buildPli(7, SSRC)),
  fc
    .record({
      fractionLost: fc.double({ min: 0, max: 0.99, noNaN: true }),
      cumulativeLost: fc.integer({ min: -0x800000, max: 0x7fffff }),
      jitter: fc.integer({ min: 0, max: 0xffffffff }),
    })
    .map((r) => buildReceiverReport(7, SSRC, r)),
);

/** Garbage, valid packets cut short, compounds of valid packets with garbage in between, headers with lying lengths. */
const packets = fc.oneof(
  fc.uint8Array({ maxLength: 1500 }),
  fc.tuple(validRtcp, fc.nat()).map(([p, cut]) => p.subarray(0, cut % (p.length + 1))),
  fc
    .array(
      fc.oneof(
        validRtcp,
        fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      ),
      { maxLength: 6 },
    )
    .map((parts) => Buffer.concat(parts)),
  fc
    .tuple(
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom(200, 201, 205, 206),
      fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ maxLength: 64 }),
    )
    .map(([b0, pt, words, rest]) => {
      const b = Buffer.alloc(4 + rest.length);
      b[0] = b0;
      b[1] = pt;
      b.writeUInt16BE(words, 2);
      b.set(rest, 4);
      return b;
    }),
  // RTP headers with CSRC counts, extensions and padding that point past the end.
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 0, maxLength: 80 }))
    .map(([b0, rest]) => Buffer.concat([Buffer.from([b0 | 0x80, 96]), Buffer.from(rest)])),
);

describe('RTP/RTCP parsers (fuzz)', () => {
  it('never throw and never answer with something outside the packet', () => {
    fc.assert(
      fc.property(packets, fc.integer({ min: 0, max: 0xffffffff }), (bytes, ssrc) => {
        const p = embedded(bytes);
        expect(typeof isRtcp(p)).toBe('boolean');
        expect(typeof wantsKeyframe(p)).toBe('boolean');

        const out: ReceptionReport = { fractionLost: -1, cumulativeLost: 0, jitter: 0 };
        for (const target of [ssrc, SSRC]) {
          if (findReceptionReport(p, target, out)) {
            expect(out.fractionLost).toBeGreaterThanOrEqual(0);
            expect(out.fractionLost).toBeLessThan(1);
            expect(Number.isInteger(out.cumulativeLost)).toBe(true);
            expect(Number.isInteger(out.jitter)).toBe(true);
          }
        }

        let nacked = 0;
        for (const target of [ssrc, SSRC]) {
          forEachNackedSeq(p, target, (seq) => {
            nacked++;
            expect(Number.isInteger(seq) && seq >= 0 && seq <= 0xffff).toBe(true);
          });
        }
        // 17 sequence numbers per 4-byte FCI at most, for each of the two targets.
        expect(nacked).toBeLessThanOrEqual(2 * 17 * Math.ceil(p.length / 4));

        const payload = rtpPayload(p);
        if (payload) {
          expect(payload.buffer).toBe(p.buffer);
          expect(payload.byteOffset).toBeGreaterThanOrEqual(p.byteOffset);
          expect(payload.byteOffset + payload.length).toBeLessThanOrEqual(p.byteOffset + p.length);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('still reads the packets it builds (the generators are not all garbage)', () => {
    const out: ReceptionReport = { fractionLost: 0, cumulativeLost: 0, jitter: 0 };
    expect(
      findReceptionReport(
        embedded(buildReceiverReport(7, SSRC, { fractionLost: 0.5, cumulativeLost: -3, jitter: 9 })),
        SSRC,
        out,
      ),
    ).toBe(true);
    expect(out).toEqual({ fractionLost: 0.5, cumulativeLost: -3, jitter: 9 });
    const seqs: number[] = [];
    forEachNackedSeq(embedded(buildNack(7, SSRC, 0xffff, 0b101)), SSRC, (s) => seqs.push(s));
    expect(seqs).toEqual([0xffff, 0, 2]);
    expect(wantsKeyframe(embedded(buildPli(7, SSRC)))).toBe(true);
  });
});
