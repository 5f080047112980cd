import { UP_SWITCH_HEADROOM, type LayerPreference, type LayerState } from './layer-choice.js';
import type { LegProber } from './leg-prober.js';
import { RtpMunger } from './rtp-munger.js';

/** A REMB older than this no longer limits the leg. */
export const ESTIMATE_FRESH_MS = 5_000;
/** The first wait before a leg on a lower layer than it may take tries the next one. */
export const PROBE_BACKOFF_MIN_MS = 4_000;
export const PROBE_BACKOFF_MAX_MS = 64_000;
/** A leg switched down this soon after trying a layer up: the try failed. */
export const PROBE_FAILED_WITHIN_MS = 6_000;
/** The leg's loss, averaged over about this long of receiver reports, ... */
export const LOSS_AVERAGE_MS = 1_000;
/** ... at this share or more moves it a layer down, */
export const LOSS_DOWN = 0.15;
/** ... once in this long (the lower layer's key frame comes, the link's queue drains). */
export const LOSS_DOWN_EVERY_MS = 2_000;
/** How long at most a fresh start's REMB counts as stale (`LegLayer.staleUntil`). */
export const STALE_ESTIMATE_MS = 30_000;
/**
 * Under this average loss the leg counts as clean: only then does a REMB raise its peak
 * and does its layer count as held (a link dropping what exceeds its rate proves nothing).
 */
export const LOSS_CLEAN = 0.05;

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
   * Until then (at most STALE_ESTIMATE_MS after a fresh start), the leg's REMB is one
   * learnt on a smaller layer: libwebrtc's estimate, its ceiling ~1.5x what came in and its
   * link capacity from then, climbs ~8 %/s, and falls to 0.85x that old capacity at the
   * first delay spike (the larger layer's own key frame makes one). Such a fall, without
   * loss, is no limit: loss (rule 3) proves the larger layer too much. Ends (0) once the
   * REMB covers the layer the leg's size allows and receives (simulcast-track.ts), or at
   * a fall with loss.
   */
  staleUntil = 0;
  /**
   * Falls so far (REMB or loss), and how many the last layer choice had seen: a leg goes
   * down on its limit only at a fall it has not acted on yet (`limitFellSinceChoice`).
   */
  falls = 0;
  private fallsSeen = 0;
  /**
   * The highest REMB the receiver reported (-1: none): what the link is known to have
   * carried, for a leg whose REMB fell and cannot climb back much above what it now
   * receives (layer-choice.ts, `estimateCovers`).
   */
  peakBps = -1;
  /**
   * The layers (bit i: layer i) the leg received for PROBE_FAILED_WITHIN_MS on end, clean
   * (LOSS_CLEAN), without coming down: ones its link is known to carry, so it may try them again after a fall
   * (a stall on a loaded machine) though no REMB covers them (layer-choice, docs/sfu.md).
   */
  heldLayers = 0;
  private onLayer = -1;
  private onSince = 0;
  /** The share of packets lost, averaged over the receiver reports of about LOSS_AVERAGE_MS. */
  lossAvg = 0;
  private reportAt = 0;
  private lossDownAt = Number.NEGATIVE_INFINITY;
  /** Sustained loss seen, not yet acted on by the layer choice (`applyLoss`). */
  lossDown = false;
  private remb = -1;
  private rembAt = 0;
  /** Pads the leg so its REMB can rise to a layer it wants (leg-prober.ts); set when it negotiated RTX. */
  prober: LegProber | undefined = undefined;

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
      if (now >= this.staleUntil || this.lossAvg >= LOSS_CLEAN) {
        this.staleUntil = 0;
        this.fellAt = now;
        this.falls++;
        this.limitBps = bps;
      }
    } else if (this.limitBps >= 0 && bps > this.limitBps) this.limitBps = bps;
    if (bps > this.peakBps && this.lossAvg < LOSS_CLEAN) this.peakBps = bps;
    this.remb = bps;
    this.rembAt = now;
  }

  /**
   * What the subscriber's receiver report said of the leg (the fraction of packets lost
   * since its last report). libwebrtc's REMB is delay-based and does not always fall on a
   * link that drops what exceeds its rate (a first REMB already at the congested rate never
   * falls): an average loss of LOSS_DOWN says the leg gets more than its link carries. Each
   * report weighs by the time it covers (reports come with every NACK: a short one with one
   * loss in it counts little), so random loss of a few percent stays under it.
   */
  onReport(fractionLost: number, now: number): void {
    const lost = fractionLost >= 0 && fractionLost <= 1 ? fractionLost : 0;
    const covers = this.reportAt > 0 ? Math.max(0, now - this.reportAt) : LOSS_AVERAGE_MS;
    this.reportAt = now;
    this.lossAvg += (lost - this.lossAvg) * Math.min(1, covers / LOSS_AVERAGE_MS);
    if (this.lossAvg >= LOSS_DOWN && now - this.lossDownAt >= LOSS_DOWN_EVERY_MS) {
      this.lossDown = true;
      this.lossDownAt = now;
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
    this.falls++;
    this.staleUntil = 0;
  }

  /**
   * The leg is shown larger (or again): no limit, no try being judged, and its REMB stale
   * for a while (`staleUntil`). A limit learnt while it received a small layer says little
   * of what the link carries.
   */
  freshStart(now: number): void {
    this.limitBps = -1;
    this.probedAt = 0;
    this.nextProbeAt = 0;
    this.staleUntil = now + STALE_ESTIMATE_MS;
  }

  /**
   * Whether the leg's limit fell (a REMB fall, sustained loss) since the last call: only
   * then may its limit take it down. A layer's measured rate rising under an unchanged
   * limit says nothing of the leg's link: it is mostly a key frame, often the one the
   * leg's own switch up asked for (2-3x the layer's rate for half a second), and going
   * down on it failed every try up that had set the limit from that layer's rate.
   */
  limitFellSinceChoice(): boolean {
    const fell = this.falls !== this.fallsSeen;
    this.fallsSeen = this.falls;
    return fell;
  }

  /** Notes how long the leg has been on its layer (called at each choice). */
  noteHeld(now: number): void {
    if (this.current !== this.onLayer) {
      this.onLayer = this.current;
      this.onSince = now;
    } else if (this.lossAvg >= LOSS_CLEAN) {
      this.onSince = now; // losing: not a layer the link carries (yet)
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
