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
  /** When the leg may next try a layer above what its estimate allows, and the wait after a failed try. */
  nextProbeAt = 0;
  probeBackoffMs = PROBE_BACKOFF_MIN_MS;
  /** When the last try up happened (0: none pending). */
  probedAt = 0;
  private estimateBps = -1;
  private estimateAt = 0;

  constructor(clockRate: number) {
    this.munger = new RtpMunger(clockRate);
  }

  /** What the subscriber's receiver estimated (REMB), in bits/s. */
  onEstimate(bps: number, now: number): void {
    this.estimateBps = bps;
    this.estimateAt = now;
  }

  /** The leg's fresh bandwidth estimate; -1 when there is none. */
  estimate(now: number): number {
    return this.estimateAt > 0 && now - this.estimateAt <= ESTIMATE_FRESH_MS ? this.estimateBps : -1;
  }
}
