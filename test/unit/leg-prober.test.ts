import { describe, expect, it } from 'vitest';
import {
  LegProber,
  PROBE_MAX_MS,
  PROBE_MAX_PAD_BPS,
  PROBE_MIN_PAD_BPS,
  PROBE_SETTLE_MS,
  PROBE_SLICE_MS,
  PROBE_WAIT_MAX_MS,
  PROBE_WAIT_MIN_MS,
  type ProbeInput,
  type ProbePadding,
} from '../../src/media/webrtc/leg-prober.js';
import { PaddingPacket, PADDING_PACKET_BYTES, isPaddingOnly } from '../../src/media/webrtc/padding-packet.js';

/** A prober whose padding is recorded: each rate it was asked for, in order. */
function prober(): { p: LegProber; rates: number[]; padding: ProbePadding } {
  const rates: number[] = [];
  const padding: ProbePadding = {
    counts: { started: 0, succeeded: 0, failed: 0 },
    setRate: (bps) => rates.push(bps),
  };
  return { p: new LegProber(padding), rates, padding };
}

/** A leg on a 150 kbit/s layer whose next one is 500 kbit/s, its REMB 225 kbit/s, clean, fell long ago. */
const input = (over: Partial<ProbeInput> = {}): ProbeInput => ({
  wantsUp: true,
  currentBps: 150_000,
  upBps: 500_000,
  estimate: 225_000,
  lossAvg: 0,
  fellAt: 0,
  ...over,
});

const T0 = 100_000;

describe('LegProber: when a probe starts', () => {
  it('starts for a clean leg that wants more than its REMB covers, padding up to its estimate', () => {
    const { p, rates, padding } = prober();
    expect(p.update(input(), T0)).toBe('probing');
    expect(padding.counts.started).toBe(1);
    // Lifted to the estimate: 225 - 150 kbit/s of padding.
    expect(rates).toEqual([75_000]);
    expect(p.padBps).toBe(75_000);
  });

  it('does not start for a leg that has what it wants, has no estimate, loses packets, or just fell', () => {
    const cases: Array<[string, Partial<ProbeInput>]> = [
      ['wants nothing more', { wantsUp: false }],
      ['no fresh REMB', { estimate: -1 }],
      ['REMB already covers the next layer', { estimate: 600_000 }],
      ['next layer not measured', { upBps: 0 }],
      ['losing 5 %', { lossAvg: 0.05 }],
      ['REMB fell just now', { fellAt: T0 - PROBE_SETTLE_MS + 1 }],
    ];
    for (const [what, over] of cases) {
      const { p, rates, padding } = prober();
      expect(p.update(input(over), T0), what).toBe('idle');
      expect(rates, what).toEqual([]);
      expect(padding.counts.started, what).toBe(0);
    }
  });

  it('pads at least PROBE_MIN_PAD_BPS and at most PROBE_MAX_PAD_BPS, never past the next layer', () => {
    const full = prober();
    full.p.update(input({ estimate: 160_000 }), T0); // media already fills the estimate
    expect(full.rates).toEqual([PROBE_MIN_PAD_BPS]);
    const far = prober();
    far.p.update(input({ currentBps: 100_000, upBps: 9_000_000, estimate: 8_000_000 }), T0);
    expect(far.rates).toEqual([PROBE_MAX_PAD_BPS]);
    const near = prober();
    near.p.update(input({ estimate: 470_000 }), T0); // goal: min(next layer, estimate)
    expect(near.rates).toEqual([470_000 - 150_000]);
  });
});

describe('LegProber: judging a probe', () => {
  it('goes on while the REMB climbs, follows it with the padding, and succeeds once it covers the next layer', () => {
    const { p, rates, padding } = prober();
    let t = T0;
    let remb = 225_000;
    expect(p.update(input({ estimate: remb }), t)).toBe('probing');
    // ~8 %/s, judged every half second as the layer choice does.
    let outcome = 'probing';
    while (outcome === 'probing' && t < T0 + PROBE_MAX_MS) {
      t += 500;
      remb *= 1.04;
      outcome = p.update(input({ estimate: remb }), t);
    }
    expect(outcome).toBe('succeeded');
    expect(remb).toBeGreaterThanOrEqual(500_000 * 1.05);
    expect(padding.counts).toEqual({ started: 1, succeeded: 1, failed: 0 });
    // The padding rose with the estimate, then stopped.
    expect(rates.at(-1)).toBe(0);
    const padded = rates.slice(0, -1);
    expect(padded.every((r, i) => i === 0 || r >= padded[i - 1]!)).toBe(true);
    expect(padded.at(-1)).toBeLessThanOrEqual(500_000 - 150_000);
    expect(p.probing).toBe(false);
  });

  it('fails when the REMB stops rising over a slice, and waits twice as long each time, up to the cap', () => {
    const { p, rates, padding } = prober();
    let t = T0;
    const waits: number[] = [];
    for (let round = 0; round < 7; round++) {
      // Waits until the prober starts again (polled as the layer choice does).
      let start = p.update(input(), t);
      const from = t;
      while (start !== 'probing') {
        t += 500;
        start = p.update(input(), t);
      }
      if (round > 0) waits.push(t - from);
      // A flat REMB: the slice ends without a rise.
      let outcome = 'probing';
      while (outcome === 'probing') {
        t += 500;
        outcome = p.update(input(), t);
      }
      expect(outcome).toBe('failed');
      expect(rates.at(-1)).toBe(0);
    }
    expect(padding.counts.failed).toBe(7);
    const expected = [2, 4, 8, 16, 32, 32].map((s) => s * 1000);
    expect(expected[0]).toBe(PROBE_WAIT_MIN_MS);
    expect(expected.at(-1)).toBe(PROBE_WAIT_MAX_MS);
    // Polled every 500 ms: each wait ends on the first poll at or after it.
    waits.forEach((w, i) => expect(w, `wait ${i}`).toBe(Math.ceil(expected[i]! / 500) * 500));
  });

  it('fails at once when the REMB falls or the leg loses packets; a success resets the wait', () => {
    const fall = prober();
    fall.p.update(input(), T0);
    expect(fall.p.update(input({ estimate: 200_000, fellAt: T0 + 400 }), T0 + 500)).toBe('failed');
    expect(fall.padding.counts.failed).toBe(1);
    const lossy = prober();
    lossy.p.update(input(), T0);
    expect(lossy.p.update(input({ lossAvg: 0.08 }), T0 + 500)).toBe('failed');
    expect(lossy.rates.at(-1)).toBe(0);
    // A fail doubles the wait; a later success brings it back to the minimum.
    expect(lossy.p.waitMs).toBe(PROBE_WAIT_MIN_MS * 2);
    const t = T0 + 500 + PROBE_WAIT_MIN_MS;
    expect(lossy.p.update(input(), t)).toBe('probing');
    expect(lossy.p.update(input({ estimate: 530_000 }), t + 500)).toBe('succeeded');
    expect(lossy.p.waitMs).toBe(PROBE_WAIT_MIN_MS);
  });

  it('gives up after PROBE_MAX_MS even while the REMB creeps up, and stops without a verdict when the leg no longer wants more', () => {
    const { p, padding } = prober();
    let t = T0;
    let remb = 225_000;
    p.update(input({ estimate: remb, upBps: 5_000_000 }), t);
    let outcome = 'probing';
    while (outcome === 'probing') {
      t += PROBE_SLICE_MS;
      remb *= 1.05;
      outcome = p.update(input({ estimate: remb, upBps: 5_000_000 }), t);
    }
    expect(outcome).toBe('failed');
    expect(t - T0).toBeGreaterThanOrEqual(PROBE_MAX_MS);
    const other = prober();
    other.p.update(input(), T0);
    expect(other.p.update(input({ wantsUp: false }), T0 + 500)).toBe('idle');
    expect(other.padding.counts).toEqual({ started: 1, succeeded: 0, failed: 0 });
    expect(other.rates).toEqual([75_000, 0]);
    expect(padding.counts.started).toBe(1);
  });
});

describe('PaddingPacket', () => {
  it('writes a padding-only RTP packet a receiver parses as such, reusing one buffer', () => {
    const pkt = new PaddingPacket();
    const a = pkt.write(101, 0xdeadbeef, 65_535, 0x1_0000_0005);
    expect(a.length).toBe(PADDING_PACKET_BYTES);
    expect(a[0]! >> 6).toBe(2);
    expect(a[0]! & 0x20).toBe(0x20);
    expect(a[1]).toBe(101);
    expect(a.readUInt16BE(2)).toBe(65_535);
    expect(a.readUInt32BE(4)).toBe(5);
    expect(a.readUInt32BE(8)).toBe(0xdeadbeef);
    expect(a[a.length - 1]).toBe(PADDING_PACKET_BYTES - 12);
    expect(isPaddingOnly(a)).toBe(true);
    expect(pkt.write(102, 1, 0, 0)).toBe(a);
    // Not padding: media, no P bit, a padding count that does not match, garbage.
    const media = Buffer.alloc(100);
    media[0] = 0x80;
    expect(isPaddingOnly(media)).toBe(false);
    const withPayload = Buffer.from(a);
    withPayload[withPayload.length - 1] = 10;
    expect(isPaddingOnly(withPayload)).toBe(false);
    expect(isPaddingOnly(Buffer.from([0xa0, 1, 2]))).toBe(false);
    const zero = Buffer.from(a);
    zero[zero.length - 1] = 0;
    expect(isPaddingOnly(zero)).toBe(false);
  });
});
