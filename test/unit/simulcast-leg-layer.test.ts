import { describe, expect, it } from 'vitest';
import type { LayerState } from '../../src/media/webrtc/layer-choice.js';
import { LegLayer, LOSS_DOWN, LOSS_SUSTAINED_MS } from '../../src/media/webrtc/leg-layer.js';

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

  it('loss over LOSS_DOWN in every report for LOSS_SUSTAINED_MS limits the leg to the layer below', () => {
    const leg = onTop();
    leg.onReport(0.5, 10_000);
    leg.onReport(0.5, 10_000 + LOSS_SUSTAINED_MS - 1);
    leg.applyLoss(layers, ranked, 10_000 + LOSS_SUSTAINED_MS - 1);
    expect(leg.limitBps).toBe(-1); // not sustained yet
    leg.onReport(0.5, 10_000 + LOSS_SUSTAINED_MS);
    expect(leg.lossDown).toBe(true);
    leg.applyLoss(layers, ranked, 11_000);
    expect(leg.lossDown).toBe(false);
    // Fits the 640 layer with the switch's headroom, not the 1280 one; a fall, so a try
    // up waits from now.
    expect(leg.limitBps).toBeGreaterThanOrEqual(340_000);
    expect(leg.limitBps).toBeLessThan(735_000 / 1.25);
    expect(leg.fellAt).toBe(11_000);
    // A limit already lower stays.
    const low = onTop();
    low.limitBps = 100_000;
    low.lossDown = true;
    low.applyLoss(layers, ranked, 11_000);
    expect(low.limitBps).toBe(100_000);
  });

  it('random loss of a few percent, or a lossy report now and then, never moves the leg', () => {
    const leg = onTop();
    let seed = 3;
    const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let t = 0; t < 120_000; t += 200) {
      // 2 % loss on average; one report in ten over LOSS_DOWN (a short interval, one packet).
      const lost = random() < 0.1 ? LOSS_DOWN + 0.05 : random() * 0.04;
      leg.onReport(lost, t);
      expect(leg.lossDown, `at ${t} ms`).toBe(false);
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
  it('a layer received for 6 s is one the link carries; one left sooner is not', () => {
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
  });
});
