import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { ProbeCounts, ProbePadding } from './leg-prober.js';
import { PADDING_PACKET_BYTES, PaddingPacket } from './padding-packet.js';
import type { ForwardTarget } from './published-track.js';

/** How often padding goes out: each probing leg gets its due in one burst per tick. */
export const PADDING_TICK_MS = 20;
/** All legs of the SFU together pad at most this much (bits/s). */
export const MAX_PADDING_BPS = 40_000_000;
/** A leg's padding owed is kept to this many ticks' worth (a late tick does not burst more). */
const MAX_OWED_TICKS = 3;

/** One leg being padded. */
interface PaddedLeg {
  readonly target: ForwardTarget;
  readonly ssrc: number;
  /** RTP timestamp base (random, RFC 3550), moved on by wall-clock time at 90 kHz. */
  readonly tsBase: number;
  bps: number;
  /** Bytes due and not yet sent. */
  owed: number;
}

/**
 * Sends the probe padding of the SFU's legs (leg-prober.ts): padding-only RTP packets on
 * each leg's RTX SSRC, with the leg's RTX payload type and its next RTX sequence number
 * (libwebrtc's RTX receiver drops them after its bandwidth estimate counted them; the
 * media stream's sequence numbers are untouched). One timer, running only while some leg
 * pads; one packet buffer for all; the SFU's total is capped (MAX_PADDING_BPS).
 */
export class PaddingSender {
  readonly counts: ProbeCounts = { started: 0, succeeded: 0, failed: 0 };
  /** Padding sent (bytes and packets), and sends the binding refused. */
  bytes = 0;
  packets = 0;
  sendErrors = 0;
  private readonly legs: PaddedLeg[] = [];
  private readonly packet = new PaddingPacket();
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;

  constructor(private readonly log: Logger) {}

  /** Legs padded now. */
  get padding(): number {
    return this.legs.length;
  }

  /** The padding of one leg that negotiated RTX (`ssrc`: its track's RTX SSRC). */
  forLeg(target: ForwardTarget, ssrc: number): ProbePadding {
    const leg: PaddedLeg = { target, ssrc, tsBase: randomInt(0, 0x100000000), bps: 0, owed: 0 };
    return {
      counts: this.counts,
      setRate: (bps: number, now = Date.now()): void => this.setRate(leg, bps, now),
    };
  }

  private setRate(leg: PaddedLeg, bps: number, now: number): void {
    const at = this.legs.indexOf(leg);
    leg.bps = bps > 0 && leg.target.rtx !== undefined ? bps : 0;
    if (leg.bps > 0 && at < 0) {
      leg.owed = 0;
      this.legs.push(leg);
    } else if (leg.bps === 0 && at >= 0) this.legs.splice(at, 1);
    if (this.legs.length > 0 && this.timer === undefined) {
      this.lastTick = now;
      this.timer = setInterval(() => this.tick(), PADDING_TICK_MS);
      this.timer.unref();
    } else if (this.legs.length === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private tick(): void {
    try {
      this.send(Date.now());
    } catch (err) {
      // Nothing here may stop the process: padding stops, the media goes on.
      this.log.warn({ err }, 'probe padding failed; padding stopped');
      this.close();
    }
  }

  /** Sends what each leg is owed since the last tick, within the SFU's cap. */
  send(now: number): void {
    const ms = Math.max(0, Math.min(now - this.lastTick, PADDING_TICK_MS * MAX_OWED_TICKS));
    this.lastTick = now;
    let budget = (MAX_PADDING_BPS / 8) * (ms / 1000);
    for (let i = this.legs.length - 1; i >= 0; i--) {
      const leg = this.legs[i]!;
      const t = leg.target;
      const rtx = t.rtx;
      if (!t.open || rtx === undefined) {
        if (t.open) continue;
        this.legs.splice(i, 1); // closed: its prober stops it too
        continue;
      }
      // Two packets may always be owed: a slow leg (32 kbit/s is 80 bytes a tick) gets
      // a packet every few ticks.
      leg.owed = Math.min(
        leg.owed + (leg.bps / 8) * (ms / 1000),
        Math.max(2 * PADDING_PACKET_BYTES, (leg.bps / 8) * ((MAX_OWED_TICKS * PADDING_TICK_MS) / 1000)),
      );
      const ts = (leg.tsBase + now * 90) >>> 0;
      while (leg.owed >= PADDING_PACKET_BYTES && budget >= PADDING_PACKET_BYTES) {
        const b = this.packet.write(rtx.payloadType, leg.ssrc, rtx.seq, ts);
        rtx.seq = (rtx.seq + 1) & 0xffff;
        leg.owed -= PADDING_PACKET_BYTES;
        budget -= PADDING_PACKET_BYTES;
        try {
          t.track.sendMessageBinary(b);
          this.packets++;
          this.bytes += PADDING_PACKET_BYTES;
        } catch {
          this.sendErrors++;
          break;
        }
      }
    }
    if (this.legs.length === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Stops all padding (the SFU closes). */
  close(): void {
    for (const leg of this.legs) leg.bps = 0;
    this.legs.length = 0;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
