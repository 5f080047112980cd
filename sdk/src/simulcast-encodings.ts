/**
 * The encodings a camera is published with (simulcast): three rid layers, `q` at a
 * quarter, `h` at half and `f` at the full capture size, each with a bitrate ceiling for
 * its size, so the server can give each subscriber the layer it shows and its link takes
 * (docs/sfu.md, "Simulcast"). Chromium and the SFU list them low to high.
 */

/** A capture whose shorter side is below this goes out as one layer (a quarter would be tiny). */
export const MIN_SIMULCAST_SIDE = 360;

/** Bitrate ceilings (bits/s) by a layer's shorter side, as LiveKit's presets are about. */
const CEILINGS: ReadonlyArray<[side: number, bps: number]> = [
  [120, 120_000],
  [180, 180_000],
  [270, 350_000],
  [360, 500_000],
  [540, 900_000],
  [720, 1_700_000],
  [1080, 3_000_000],
];

/** The bitrate ceiling for a layer whose shorter side is `side` pixels. */
export function layerBitrate(side: number): number {
  for (const [s, bps] of CEILINGS) if (side <= s) return bps;
  return 5_000_000;
}

/**
 * The send encodings for a `width` x `height` capture: q/h/f at 1/4, 1/2 and full size, or
 * undefined (one encoding) when the capture is too small or its size unknown.
 */
export function simulcastEncodings(width: number, height: number): RTCRtpEncodingParameters[] | undefined {
  const side = Math.min(width, height);
  if (!(side >= MIN_SIMULCAST_SIDE)) return undefined;
  return (
    [
      ['q', 4],
      ['h', 2],
      ['f', 1],
    ] as const
  ).map(([rid, scale]) => ({
    rid,
    active: true,
    scaleResolutionDownBy: scale,
    maxBitrate: layerBitrate(Math.round(side / scale)),
  }));
}

/**
 * Sets `active` on the encodings whose rid `wanted` names (the server's `layersWanted`);
 * true when something changed.
 */
export function applyWantedLayers(
  encodings: RTCRtpEncodingParameters[],
  wanted: ReadonlyArray<{ rid: string; active: boolean }>,
): boolean {
  let changed = false;
  for (const e of encodings) {
    const w = wanted.find((l) => l.rid === e.rid);
    if (!w || (e.active !== false) === w.active) continue;
    e.active = w.active;
    changed = true;
  }
  return changed;
}
