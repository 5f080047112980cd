import { describe, expect, it } from 'vitest';
import {
  NACK_FIRST_DELAY_MS,
  NACK_MAX_MISSING,
  NACK_MAX_TRIES,
  NACK_RETRY_MS,
  NackGenerator,
} from '../../src/media/webrtc/nack-generator.js';
import { forEachNackedSeq } from '../../src/media/webrtc/rtp.js';

const SENDER = 0x1234;
const MEDIA = 0xabcdef01;

/** The sequence numbers a NACK the generator built asks for, through the SFU's own NACK reader. */
function asked(nack: Buffer | undefined): number[] {
  if (!nack) return [];
  const out: number[] = [];
  forEachNackedSeq(nack, MEDIA, (s) => out.push(s));
  return out;
}

function feed(g: NackGenerator, seqs: number[], now = 0): void {
  for (const s of seqs) g.received(s, now);
}

describe('NackGenerator (the SFU NACKing a publisher)', () => {
  it('NACKs a gap after the reordering delay, in one packet with the bitmask', () => {
    const g = new NackGenerator();
    feed(g, [100, 101, 104, 105, 121]);
    expect(g.missing).toBe(2 + 15);
    expect(g.due(NACK_FIRST_DELAY_MS - 1, SENDER, MEDIA)).toBeUndefined();
    const nack = g.due(NACK_FIRST_DELAY_MS, SENDER, MEDIA)!;
    expect(nack[1]).toBe(205); // RTPFB
    expect(nack[0]! & 0x1f).toBe(1); // generic NACK
    expect(nack.readUInt32BE(4)).toBe(SENDER);
    expect(nack.readUInt16BE(2)).toBe(nack.length / 4 - 1);
    const want = [102, 103, ...Array.from({ length: 15 }, (_, i) => 106 + i)];
    expect(asked(nack)).toEqual(want);
    // PID 102 covers 103..118 by its bitmask; 119 and 120 need a second FCI.
    expect(nack.length).toBe(12 + 4 * 2);
  });

  it('forgets a packet that arrives late or as a retransmission', () => {
    const g = new NackGenerator();
    feed(g, [10, 13]);
    g.received(11, 5); // reordered, before the first NACK
    expect(asked(g.due(NACK_FIRST_DELAY_MS, SENDER, MEDIA))).toEqual([12]);
    g.received(12, 30); // the retransmission
    expect(g.missing).toBe(0);
    expect(g.due(1000, SENDER, MEDIA)).toBeUndefined();
  });

  it('retries a few times, one retry interval apart, then gives up', () => {
    const g = new NackGenerator();
    feed(g, [1, 3]);
    let now = NACK_FIRST_DELAY_MS;
    const times: number[] = [];
    for (; now < 2000; now += 5) if (asked(g.due(now, SENDER, MEDIA)).length > 0) times.push(now);
    expect(times).toHaveLength(NACK_MAX_TRIES);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(NACK_RETRY_MS);
    expect(g.missing).toBe(0);
    expect(g.givenUp).toBe(1);
    expect(g.nacked).toBe(NACK_MAX_TRIES);
  });

  it('follows the sequence number across its wrap-around', () => {
    const g = new NackGenerator();
    feed(g, [65533, 65534, 1, 2]); // 65535 and 0 lost
    expect(asked(g.due(100, SENDER, MEDIA))).toEqual([65535, 0]);
    g.received(0, 101);
    g.received(65535, 102);
    expect(g.missing).toBe(0);
    // An old packet from before the wrap is late, not a jump forward.
    g.received(65000, 103);
    expect(g.missing).toBe(0);
  });

  it('treats a jump of more than the bound as a new stream, not thousands of losses', () => {
    const g = new NackGenerator();
    feed(g, [5, 7]);
    g.received(30_000, 1);
    expect(g.missing).toBe(0);
    expect(g.due(1000, SENDER, MEDIA)).toBeUndefined();
    feed(g, [30_001, 30_003], 2);
    expect(asked(g.due(1000, SENDER, MEDIA))).toEqual([30_002]);
  });

  it('keeps bounded memory: the oldest missing packets give way', () => {
    const g = new NackGenerator();
    // Gaps of one, many times over: more missing packets than it holds.
    for (let s = 0; s < 4 * NACK_MAX_MISSING; s += 2) g.received(s, 0);
    expect(g.missing).toBe(NACK_MAX_MISSING);
    const all: number[] = [];
    for (let n = 0, now = NACK_FIRST_DELAY_MS; n < 50; n++) {
      const a = asked(g.due(now, SENDER, MEDIA));
      if (a.length === 0) break;
      all.push(...a);
    }
    // Only the newest NACK_MAX_MISSING gaps, each once in the first round.
    const newest = Array.from(
      { length: NACK_MAX_MISSING },
      (_, i) => 4 * NACK_MAX_MISSING - 1 - 2 * (NACK_MAX_MISSING - i),
    );
    expect(all).toEqual(newest);
  });

  it('ignores what is not a sequence number, and duplicates', () => {
    const g = new NackGenerator();
    for (const bad of [-1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) g.received(bad, 0);
    feed(g, [100, 100, 100, 101]);
    expect(g.missing).toBe(0);
    expect(g.due(1000, SENDER, MEDIA)).toBeUndefined();
  });
});
