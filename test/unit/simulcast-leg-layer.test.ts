import { describe, expect, it } from 'vitest';
import type { LayerState } from '../../src/media/webrtc/layer-choice.js';
import { LegLayer, LOSS_DOWN_EVERY_MS, STALE_ESTIMATE_MS } from '../../src/media/webrtc/leg-layer.js';

// One leg's own rules (docs/sfu.md, "How a layer is chosen"), on an injected clock: what
// its receiver's REMB and reports do to its limit. The choice from the limit and the tries
// up are SimulcastTrack's (test/unit/simulcast-track.test.ts).

/** Chromium's three layers as measured on a 1280x720 fake camera. */
const layers: LayerState[] = [
  { active: true, bps: 150_000, width: 320, height: 180 },
  { active: true, bps: 340_000, width: 640, height: 360 },
  { active: true, bps: 735_000, width: 1280, height: 720 },
];
const ranked = [0, 1, 2];

function onTop(): LegLayer {
  const leg = new LegLayer(90_000);
  leg.current = 2;
  leg.target = 2;
  return leg;
}

describe('LegLayer', () => {
  it('starts without a limit: a new leg may take the top layer its size allows', () => {
    const leg = new LegLayer(90_000);
    expect(leg.limitBps).toBe(-1);
    expect(leg.estimate(1_000)).toBe(-1);
  });

  it('a falling REMB limits the leg at once; a rising one lifts the limit; a stale one counts as none', () => {
    const leg = onTop();
    leg.onEstimate(900_000, 1_000);
    expect(leg.limitBps).toBe(-1); // the first REMB is no fall
    leg.onEstimate(400_000, 2_000);
    expect(leg.limitBps).toBe(400_000);
    expect(leg.fellAt).toBe(2_000);
    leg.onEstimate(600_000, 3_000);
    expect(leg.limitBps).toBe(600_000);
    expect(leg.peakBps).toBe(900_000);
    expect(leg.estimate(3_000 + 5_000)).toBe(600_000);
    expect(leg.estimate(3_000 + 5_001)).toBe(-1);
  });

  it('shown larger, its REMB learnt on the small layer falls without limiting it, unless with loss or once stale no more (#18)', () => {
    const leg = new LegLayer(90_000);
    leg.current = 0;
    leg.onEstimate(230_000, 1_000); // ~1.5x the 320 layer
    leg.onEstimate(200_000, 2_000);
    expect(leg.limitBps).toBe(200_000);
    leg.freshStart(3_000);
    expect(leg.limitBps).toBe(-1);
    leg.current = 2;
    // The 1280 layer's key frame makes a delay spike: libwebrtc falls to 0.85x its old
    // capacity, and a starved box collapses further. No loss: no limit, no fall.
    leg.onEstimate(170_000, 4_000);
    leg.onEstimate(20_000, 5_000);
    expect(leg.limitBps).toBe(-1);
    expect(leg.fellAt).toBe(2_000);
    // A fall with loss is a verdict, and ends the stale time.
    for (let t = 5_000; t <= 6_000; t += 250) leg.onReport(0.1, t);
    leg.onEstimate(18_000, 6_000);
    expect(leg.limitBps).toBe(18_000);
    expect(leg.fellAt).toBe(6_000);
    expect(leg.staleUntil).toBe(0);
    // And a fresh start's stale time ends by itself.
    const late = new LegLayer(90_000);
    late.onEstimate(230_000, 1_000);
    late.freshStart(2_000);
    late.onEstimate(150_000, 2_000 + STALE_ESTIMATE_MS);
    expect(late.limitBps).toBe(150_000);
  });

  it('an average loss of LOSS_DOWN over about a second of reports limits the leg to the layer below', () => {
    const leg = onTop();
    leg.onReport(0, 10_000); // the first report covers the stream so far
    leg.onReport(0.3, 10_100); // a short report: counts a tenth
    leg.applyLoss(layers, ranked, 10_100);
    expect(leg.limitBps).toBe(-1);
    leg.onReport(0.3, 10_600);
    leg.onReport(0.3, 11_100);
    expect(leg.lossDown).toBe(true);
    leg.applyLoss(layers, ranked, 11_100);
    expect(leg.lossDown).toBe(false);
    // Fits the 640 layer with the switch's headroom, not the 1280 one; a fall, so a try
    // up waits from now.
    expect(leg.limitBps).toBeGreaterThanOrEqual(340_000);
    expect(leg.limitBps).toBeLessThan(735_000 / 1.25);
    expect(leg.fellAt).toBe(11_100);
    // Loss goes on while the link's queue drains: the next move only LOSS_DOWN_EVERY_MS on.
    leg.onReport(0.3, 11_600);
    expect(leg.lossDown).toBe(false);
    leg.onReport(0.3, 11_100 + LOSS_DOWN_EVERY_MS);
    expect(leg.lossDown).toBe(true);
    // A limit already lower stays.
    const low = onTop();
    low.limitBps = 100_000;
    low.lossDown = true;
    low.applyLoss(layers, ranked, 11_000);
    expect(low.limitBps).toBe(100_000);
  });

  it('a REMB while the leg loses does not raise its peak', () => {
    const leg = onTop();
    leg.onEstimate(500_000, 1_000);
    leg.onReport(0.3, 1_500);
    leg.onEstimate(760_000, 2_000); // 1.5x what a 500 kbit/s link delivers of 1280
    expect(leg.peakBps).toBe(500_000);
  });

  it('random loss of a few percent, or a lossy report now and then, never moves the leg', () => {
    const leg = onTop();
    let seed = 3;
    const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    // Reports as libwebrtc sends them: one a second, and one with each NACK (right after a
    // loss: a short interval with one loss in a few packets). 2 % of the packets lost at
    // random, at the 640 layer's ~30 packets a second and the 1280 one's ~70.
    for (const perSecond of [30, 70]) {
      let last = 0;
      let sent = 0;
      let lost = 0;
      for (let t = 0; t < 300_000; t += 1_000 / perSecond) {
        sent++;
        const drop = random() < 0.02;
        if (drop) lost++;
        if (drop || t - last >= 1_000) {
          leg.onReport(lost / sent, t);
          expect(leg.lossDown, `at ${t} ms, ${perSecond}/s`).toBe(false);
          last = t;
          sent = 0;
          lost = 0;
        }
      }
    }
  });

  it('sustained loss while the leg already waits for a lower layer does not send it lower still', () => {
    const leg = onTop();
    leg.target = 1; // chosen, waiting for the 640 layer's key frame
    leg.lossDown = true;
    leg.applyLoss(layers, ranked, 5_000);
    expect(leg.limitBps).toBe(-1);
    expect(leg.lossDown).toBe(false);
    // On the lowest layer there is nothing below.
    const bottom = new LegLayer(90_000);
    bottom.current = 0;
    bottom.target = 0;
    bottom.lossDown = true;
    bottom.applyLoss(layers, ranked, 5_000);
    expect(bottom.limitBps).toBe(-1);
  });

  it('takes any reported fraction (NaN, out of range) without throwing', () => {
    const leg = onTop();
    for (const f of [Number.NaN, -1, 2, Infinity]) leg.onReport(f, 1_000);
    expect(() => leg.applyLoss(layers, ranked, 1_000)).not.toThrow();
  });
});

describe('LegLayer: layers held', () => {
  it('a layer received clean for 6 s is one the link carries; one left sooner, or lossy, is not', () => {
    const leg = new LegLayer(90_000);
    leg.current = 2;
    leg.noteHeld(0);
    leg.noteHeld(5_999);
    expect(leg.heldAtOrAbove(ranked, 2)).toBe(false); // left before 6 s: a failed start
    leg.current = 1;
    leg.noteHeld(6_000);
    leg.noteHeld(12_000);
    expect(leg.heldAtOrAbove(ranked, 1)).toBe(true);
    expect(leg.heldAtOrAbove(ranked, 2)).toBe(false);
    leg.current = 2;
    leg.noteHeld(12_500);
    leg.noteHeld(18_500);
    expect(leg.heldAtOrAbove(ranked, 2)).toBe(true);
    expect(leg.heldAtOrAbove(ranked, 0)).toBe(true);
    // Six seconds on the top layer while losing a third of it: not held.
    const lossy = new LegLayer(90_000);
    lossy.current = 2;
    for (let t = 0; t <= 8_000; t += 500) {
      lossy.onReport(0.3, t);
      lossy.lossDown = false; // (the layer choice would have moved it: here, only holding is judged)
      lossy.noteHeld(t);
    }
    expect(lossy.heldAtOrAbove(ranked, 2)).toBe(false);
  });
});
