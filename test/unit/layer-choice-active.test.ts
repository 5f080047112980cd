import { describe, expect, it } from 'vitest';
import { chooseLayer, wantedLayers, type LayerState } from '../../src/media/webrtc/layer-choice.js';

/** A track's three layers as Chromium sends a 1280x720 camera: q, h, f. */
const layers: LayerState[] = [
  { active: true, bps: 150_000, width: 320, height: 180 },
  { active: true, bps: 500_000, width: 640, height: 360 },
  { active: true, bps: 1_500_000, width: 1280, height: 720 },
];

describe('layer choice with a video shown nowhere (trackSettings active: false)', () => {
  it('an inactive leg gets no layer, whatever its size or bandwidth', () => {
    expect(chooseLayer(layers, 2, { maxWidth: 0, maxHeight: 0, active: false }, -1)).toBe(-1);
    expect(chooseLayer(layers, -1, { maxWidth: 320, maxHeight: 0, active: false }, 5_000_000)).toBe(-1);
    expect(chooseLayer(layers, -1, { maxWidth: 320, maxHeight: 0, active: true }, -1)).toBe(0);
    expect(chooseLayer(layers, -1, { maxWidth: 320, maxHeight: 0 }, -1)).toBe(0);
  });

  it('an inactive leg wants no layer at the publisher; the lowest stays for a new subscriber', () => {
    const off = { maxWidth: 0, maxHeight: 0, active: false };
    expect(wantedLayers(layers, [off], false)).toEqual([true, false, false]);
    expect(wantedLayers(layers, [off, { maxWidth: 640, maxHeight: 0 }], false)).toEqual([true, true, false]);
    expect(wantedLayers(layers, [{ maxWidth: 0, maxHeight: 0 }], false)).toEqual([true, true, true]);
  });
});
