/**
 * Bandwidth probing for one subscriber leg (#18): a leg held on a lower layer than the one
 * it wants, by a REMB learnt on that lower layer, gets padding so its receiver's estimate
 * can rise to the next layer.
 *
 * Why padding, and why a probe runs for seconds: libwebrtc's receive-side estimate (the
 * REMB, AimdRateControl) never rises above ~1.5x what comes in (+10 kbit/s), and while
 * unconstrained it rises by at most ~8 % a second. A leg on Chromium's 1/4 layer has a
 * REMB of ~1.5x that layer and cannot reach the 1/2 layer's rate on media alone. Padding
 * lifts what comes in to the receiver's own estimate (never above the next layer's
 * measured rate), so the ceiling moves with the estimate and the estimate climbs; a link
 * that cannot carry it shows queueing (the REMB falls) or loss, and the probe stops.
 *
 * A probe is judged every PROBE_SLICE_MS: it succeeds once the estimate covers the next
 * layer (TRY_UP_COVER), goes on while the estimate rose by PROBE_RISE over the slice (up
 * to PROBE_MAX_MS), and fails when it did not, when the REMB fell, or when the leg loses
 * packets (LOSS_CLEAN). After a failure the next probe waits twice as long as the last
 * wait (PROBE_WAIT_MIN_MS to PROBE_WAIT_MAX_MS), so a constrained leg is not flooded.
 * Pure decisions over what the caller measured; the padding itself goes through `padding`.
 */
import { TRY_UP_COVER } from './layer-choice.js';

/** How long a probe runs between two judgements. */
export const PROBE_SLICE_MS = 2_000;
/** The share the estimate must rise by over a slice for the probe to go on. */
export const PROBE_RISE = 1.03;
/** The longest one probe may run (the estimate climbs ~8 %/s: 1/4 -> 1/2 layer is ~12 s). */
export const PROBE_MAX_MS = 30_000;
/** No probe this soon after the leg's REMB fell: let the link's queue drain first. */
export const PROBE_SETTLE_MS = 3_000;
export const PROBE_WAIT_MIN_MS = 2_000;
export const PROBE_WAIT_MAX_MS = 32_000;
/** A leg probing pads at least this much (a leg whose media already fills its estimate). */
export const PROBE_MIN_PAD_BPS = 32_000;
/** And at most this much, however far its next layer is. */
export const PROBE_MAX_PAD_BPS = 2_500_000;
/** A leg whose averaged loss reaches this does not probe (leg-layer.ts LOSS_CLEAN). */
const PROBE_LOSS_MAX = 0.05;

/** The SFU's probe counters (for /metrics). */
export interface ProbeCounts {
  started: number;
  succeeded: number;
  failed: number;
}

/** Where a leg's padding goes: the SFU's PaddingSender (padding-sender.ts). */
export interface ProbePadding {
  /** Pads the leg at `bps` bits/s from `now` (ms, Date.now() by default) on; 0 stops it. */
  setRate(bps: number, now?: number): void;
  readonly counts: ProbeCounts;
}

/** What the layer choice knows of a leg when it asks the prober (reused, not allocated per call). */
export interface ProbeInput {
  /** The leg wants (and may take) a layer above the one it receives, and is not switching. */
  wantsUp: boolean;
  /** Measured bitrate of the layer the leg receives, and of the next one up (bits/s). */
  currentBps: number;
  upBps: number;
  /** The leg's fresh REMB (bits/s); -1: none. */
  estimate: number;
  /** The leg's averaged loss (0..1). */
  lossAvg: number;
  /** When the leg's REMB last fell (0: never). */
  fellAt: number;
}

export type ProbeOutcome = 'idle' | 'probing' | 'succeeded' | 'failed';

export class LegProber {
  /** When the probe running began (0: none runs). */
  startedAt = 0;
  /** The padding rate asked for now (bits/s). */
  padBps = 0;
  /** When the next probe may start, and the wait after the next failure. */
  nextAt = 0;
  waitMs = PROBE_WAIT_MIN_MS;
  private sliceAt = 0;
  private sliceEstimate = 0;

  constructor(private readonly padding: ProbePadding) {}

  get probing(): boolean {
    return this.startedAt > 0;
  }

  /**
   * Called at each layer choice. 'succeeded' once: the estimate now covers the next layer,
   * the caller switches the leg up.
   */
  update(v: ProbeInput, now: number): ProbeOutcome {
    if (!this.probing) {
      if (!this.shouldStart(v, now)) return 'idle';
      this.startedAt = now;
      this.sliceAt = now;
      this.sliceEstimate = v.estimate;
      this.padding.counts.started++;
      this.setPad(v);
      return 'probing';
    }
    if (!v.wantsUp) {
      // The leg no longer wants more (smaller element, layer paused, switching): neither
      // success nor failure.
      this.stop();
      return 'idle';
    }
    if (v.estimate >= 0 && v.estimate >= v.upBps * TRY_UP_COVER) {
      this.stop();
      this.padding.counts.succeeded++;
      this.waitMs = PROBE_WAIT_MIN_MS;
      this.nextAt = now + PROBE_WAIT_MIN_MS;
      return 'succeeded';
    }
    const fell = v.fellAt > this.startedAt || v.estimate < 0;
    if (fell || v.lossAvg >= PROBE_LOSS_MAX) return this.fail(now);
    if (now - this.sliceAt >= PROBE_SLICE_MS) {
      if (v.estimate < this.sliceEstimate * PROBE_RISE || now - this.startedAt >= PROBE_MAX_MS)
        return this.fail(now);
      this.sliceAt = now;
      this.sliceEstimate = v.estimate;
    }
    this.setPad(v);
    return 'probing';
  }

  /** Stops padding (the leg closes, the track ends, the probe ends). */
  stop(): void {
    this.startedAt = 0;
    if (this.padBps !== 0) {
      this.padBps = 0;
      this.padding.setRate(0);
    }
  }

  private shouldStart(v: ProbeInput, now: number): boolean {
    return (
      v.wantsUp &&
      v.estimate >= 0 &&
      v.upBps > 0 &&
      v.estimate < v.upBps * TRY_UP_COVER &&
      v.lossAvg < PROBE_LOSS_MAX &&
      now >= this.nextAt &&
      now - v.fellAt >= PROBE_SETTLE_MS
    );
  }

  private fail(now: number): ProbeOutcome {
    this.stop();
    this.padding.counts.failed++;
    this.nextAt = now + this.waitMs;
    this.waitMs = Math.min(PROBE_WAIT_MAX_MS, this.waitMs * 2);
    return 'failed';
  }

  /**
   * What comes in is lifted to the receiver's own estimate (what it says the link
   * carries), never above the next layer's rate: that is enough for the estimate to climb
   * past it (the 1.5x ceiling), and no more than the leg would receive once switched up.
   */
  private setPad(v: ProbeInput): void {
    const goal = Math.min(v.upBps, v.estimate);
    const bps = Math.round(Math.min(PROBE_MAX_PAD_BPS, Math.max(PROBE_MIN_PAD_BPS, goal - v.currentBps)));
    if (bps === this.padBps) return;
    this.padBps = bps;
    this.padding.setRate(bps);
  }
}
