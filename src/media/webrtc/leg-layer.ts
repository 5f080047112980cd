import { UP_SWITCH_HEADROOM, type LayerPreference, type LayerState } from './layer-choice.js';
import { RtpMunger } from './rtp-munger.js';

/** A REMB older than this no longer limits the leg. */
export const ESTIMATE_FRESH_MS = 5_000;
/** The first wait before a leg on a lower layer than it may take tries the next one. */
export const PROBE_BACKOFF_MIN_MS = 4_000;
export const PROBE_BACKOFF_MAX_MS = 64_000;
/** A leg switched down this soon after trying a layer up: the try failed. */
export const PROBE_FAILED_WITHIN_MS = 6_000;
/** A receiver report saying the leg lost at least this share of its packets is lossy. */
export const LOSS_DOWN = 0.1;
/** Every report lossy for this long moves the leg a layer down. */
export const LOSS_SUSTAINED_MS = 1_000;

/**
 * One subscriber leg's place in a simulcast track: the layer it receives (`current`), the
 * one it waits for a key frame of (`target`), the munger that splices them, what it asked
 * for (`preference`) and what its receiver says it can take (REMB).
 */
export class LegLayer {
  /** The layer forwarded now; -1 before the first key frame. */
  current = -1;
  /** The layer chosen; differs from `current` until that layer's next key frame. */
  target = -1;
  readonly munger: RtpMunger;
  readonly preference: LayerPreference = { maxWidth: 0, maxHeight: 0 };
  /** Layer changes done (key frame reached). */
  switches = 0;
  /** When the leg may next try a layer above its limit, and the wait after a failed try. */
  nextProbeAt = 0;
  probeBackoffMs = PROBE_BACKOFF_MIN_MS;
  /** When the last try up happened (0: none being judged). */
  probedAt = 0;
  /**
   * What the leg may receive (bits/s); -1: no limit. Set by a falling REMB (the receiver
   * saw congestion), raised by a rising one and by each try up (layer-choice, docs/sfu.md).
   */
  limitBps = -1;
  /** When the receiver's REMB last fell (0: never). */
  fellAt = 0;
  /**
   * The highest REMB the receiver reported (-1: none): what the link is known to have
   * carried, for a leg whose REMB fell and cannot climb back much above what it now
   * receives (layer-choice.ts, `estimateCovers`).
   */
  peakBps = -1;
  /**
   * The layers (bit i: layer i) the leg received for PROBE_FAILED_WITHIN_MS on end without
   * coming down: ones its link is known to carry, so it may try them again after a fall
   * (a stall on a loaded machine) though no REMB covers them (layer-choice, docs/sfu.md).
   */
  heldLayers = 0;
  private onLayer = -1;
  private onSince = 0;
  /** Since when every receiver report was lossy (0: the last was not). */
  lossySince = 0;
  /** Sustained loss seen, not yet acted on by the layer choice (`applyLoss`). */
  lossDown = false;
  private remb = -1;
  private rembAt = 0;

  constructor(clockRate: number) {
    this.munger = new RtpMunger(clockRate);
  }

  /**
   * What the subscriber's receiver estimated (REMB), in bits/s. libwebrtc's estimate only
   * falls on congestion (or to about 1.5x what comes in): a fall is the leg's new limit; a
   * rise lifts a limit below it.
   */
  onEstimate(bps: number, now: number): void {
    if (this.remb > 0 && bps < this.remb * 0.97) {
      this.fellAt = now;
      this.limitBps = bps;
    } else if (this.limitBps >= 0 && bps > this.limitBps) this.limitBps = bps;
    if (bps > this.peakBps) this.peakBps = bps;
    this.remb = bps;
    this.rembAt = now;
  }

  /**
   * What the subscriber's receiver report said of the leg (fraction of packets lost since
   * its last report). libwebrtc's REMB is delay-based and does not always fall on a link
   * that drops what exceeds its rate (a first REMB already at the congested rate never
   * falls): loss over LOSS_DOWN in every report for LOSS_SUSTAINED_MS says the leg gets
   * more than its link carries. Random loss of a few percent stays under it.
   */
  onReport(fractionLost: number, now: number): void {
    if (!(fractionLost >= LOSS_DOWN)) {
      this.lossySince = 0;
    } else if (this.lossySince === 0) {
      this.lossySince = now;
    } else if (now - this.lossySince >= LOSS_SUSTAINED_MS) {
      this.lossDown = true;
      this.lossySince = 0; // the next move down needs another full stretch of loss
    }
  }

  /**
   * Acts on sustained loss (once): limits the leg to the layer below the one it receives
   * (`ranked`: layer indices from low to high) and counts it as a fall, so a try up waits.
   * Nothing when the leg already waits for a lower layer's key frame.
   */
  applyLoss(layers: readonly LayerState[], ranked: readonly number[], now: number): void {
    if (!this.lossDown) return;
    this.lossDown = false;
    const at = ranked.indexOf(this.current);
    const below = at > 0 ? layers[ranked[at - 1]!] : undefined;
    if (below === undefined || ranked.indexOf(this.target) < at) return;
    const fit = below.bps / UP_SWITCH_HEADROOM;
    this.limitBps = this.limitBps >= 0 ? Math.min(this.limitBps, fit) : fit;
    this.fellAt = now;
  }

  /** Notes how long the leg has been on its layer (called at each choice). */
  noteHeld(now: number): void {
    if (this.current !== this.onLayer) {
      this.onLayer = this.current;
      this.onSince = now;
    } else if (this.current >= 0 && now - this.onSince >= PROBE_FAILED_WITHIN_MS) {
      this.heldLayers |= 1 << this.current;
    }
  }

  /** Whether the leg once held layer `rank` of `ranked` (low to high) or one above it. */
  heldAtOrAbove(ranked: readonly number[], rank: number): boolean {
    for (let r = Math.max(0, rank); r < ranked.length; r++)
      if (this.heldLayers & (1 << ranked[r]!)) return true;
    return false;
  }

  /** The leg's last fresh REMB; -1 when there is none. */
  estimate(now: number): number {
    return this.rembAt > 0 && now - this.rembAt <= ESTIMATE_FRESH_MS ? this.remb : -1;
  }
}
