import type { LayerPreference } from './layer-choice.js';
import { RtpMunger } from './rtp-munger.js';

/** A REMB older than this no longer limits the leg. */
export const ESTIMATE_FRESH_MS = 5_000;
/** The first wait before a leg on a lower layer than it may take tries the next one. */
export const PROBE_BACKOFF_MIN_MS = 4_000;
export const PROBE_BACKOFF_MAX_MS = 64_000;
/** A leg switched down this soon after trying a layer up: the try failed. */
export const PROBE_FAILED_WITHIN_MS = 6_000;

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

  /** The leg's last fresh REMB; -1 when there is none. */
  estimate(now: number): number {
    return this.rembAt > 0 && now - this.rembAt <= ESTIMATE_FRESH_MS ? this.remb : -1;
  }
}
