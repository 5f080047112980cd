/**
 * Which simulcast layer a subscriber leg should receive, and which layers a track must
 * keep sending. Pure functions over what the forwarder measured: unit-tested alone.
 */

/** What is known of one layer of a track (index = its place in the offer). */
export interface LayerState {
  /** Packets arrived in the last measuring window (the publisher sends it now). */
  active: boolean;
  /** Measured bitrate while active (bits/s); the last measure once paused. */
  bps: number;
  /** Frame width from its last key frame (VP8); 0 when unknown. */
  width: number;
  height: number;
}

/** What the subscriber asked for (the size of the element that shows the track). */
export interface LayerPreference {
  /** The rendered size in pixels; 0 = no limit. */
  maxWidth: number;
  maxHeight: number;
  /**
   * False: the subscriber shows the video nowhere (hidden, off screen, turned off): its leg
   * gets no layer and wants none at the publisher. Absent: true.
   */
  active?: boolean;
}

/**
 * The layers' indices from the lowest quality to the highest: by frame width where every
 * layer's is known, else by measured bitrate, else in the offer's order (Chromium and the
 * SDKs list simulcast encodings from low to high).
 */
export function rankLayers(layers: readonly LayerState[]): number[] {
  const idx = layers.map((_, i) => i);
  const allWidths = layers.every((l) => l.width > 0);
  const allRates = layers.every((l) => l.bps > 0);
  if (allWidths) return idx.sort((a, b) => layers[a]!.width - layers[b]!.width || a - b);
  if (allRates) return idx.sort((a, b) => layers[a]!.bps - layers[b]!.bps || a - b);
  return idx;
}

/**
 * The highest rank the preference allows: the smallest layer at least as large as the
 * element (a larger one only costs bandwidth), or the top when sizes are unknown.
 */
export function maxRankFor(
  layers: readonly LayerState[],
  ranked: readonly number[],
  pref: LayerPreference,
): number {
  if (pref.maxWidth <= 0 && pref.maxHeight <= 0) return ranked.length - 1;
  for (let r = 0; r < ranked.length; r++) {
    const l = layers[ranked[r]!]!;
    if (l.width === 0) return ranked.length - 1;
    if ((pref.maxWidth > 0 && l.width >= pref.maxWidth) || (pref.maxHeight > 0 && l.height >= pref.maxHeight))
      return r;
  }
  return ranked.length - 1;
}

/** Going up needs this share of the estimate left over: room for the switch's key frame. */
export const UP_SWITCH_HEADROOM = 0.85;
/**
 * Staying on a layer is allowed up to this multiple of the estimate: a receiver's first
 * REMB is about what it measured coming in, and measures differ by key frames and windows.
 */
export const STAY_TOLERANCE = 1.25;

/**
 * A leg held down by a limit tries the next layer up only when its REMB covers that layer's
 * measured bitrate by this much. A REMB rises to at most ~1.5x what the leg receives, so
 * from a layer far below the next one (Chromium's 1/4 -> 1/2 size) a leg whose estimate
 * fell stays until its REMB says the link carries more: trying a layer the link cannot
 * carry queues and loses its packets, and the subscriber freezes on the way back down.
 */
export const TRY_UP_COVER = 1.05;

/** Whether a leg's estimate (bits/s; -1: none) lets it try layer `up`. */
export function estimateCovers(estimateBps: number, up: LayerState): boolean {
  return up.active && up.bps > 0 && estimateBps >= up.bps * TRY_UP_COVER;
}

/**
 * The layer (index) a leg should receive: the highest active one within its preference
 * whose bitrate fits the leg's bandwidth estimate (-1: no estimate yet, no limit); the
 * lowest active one when none fits; -1 when no layer is active or the preference is not.
 */
export function chooseLayer(
  layers: readonly LayerState[],
  current: number,
  pref: LayerPreference,
  estimateBps: number,
): number {
  if (pref.active === false) return -1;
  const ranked = rankLayers(layers);
  const maxRank = maxRankFor(layers, ranked, pref);
  let choice = -1;
  for (let r = 0; r < ranked.length; r++) {
    const i = ranked[r]!;
    const l = layers[i]!;
    if (!l.active) continue;
    if (choice === -1) choice = i; // the lowest active layer: the floor
    if (r > maxRank) break;
    if (estimateBps >= 0) {
      const budget = estimateBps * (i === current ? STAY_TOLERANCE : UP_SWITCH_HEADROOM);
      if (l.bps > budget) continue;
    }
    choice = i;
  }
  return choice;
}

/**
 * The layers a track's publisher should keep sending: every layer up to the highest any
 * leg's preference allows (lower layers stay, for legs whose bandwidth drops: switching
 * down must not wait for a layer to resume), the lowest one when no leg receives (a new
 * subscriber starts at once), all of them when other nodes receive the track (their legs'
 * wants are not known here).
 */
export function wantedLayers(
  layers: readonly LayerState[],
  prefs: Iterable<LayerPreference>,
  relayed: boolean,
): boolean[] {
  const ranked = rankLayers(layers);
  let top = 0;
  if (relayed) top = ranked.length - 1;
  for (const p of prefs) if (p.active !== false) top = Math.max(top, maxRankFor(layers, ranked, p));
  const out = layers.map(() => false);
  for (let r = 0; r <= top && r < ranked.length; r++) out[ranked[r]!] = true;
  return out;
}
