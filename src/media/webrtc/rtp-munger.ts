import type { Vp8Descriptor } from './vp8-descriptor.js';

/** a - b in 16-bit sequence space, as a signed distance (-32768..32767). */
function seqDiff(a: number, b: number): number {
  return ((a - b + 0x8000) & 0xffff) - 0x8000;
}

/**
 * One subscriber's view of a track whose source changes (another simulcast layer): the
 * subscriber must see one continuous stream, so each run of packets from one source gets
 * offsets that make its sequence numbers follow the last ones sent, its timestamps move
 * on by the wall-clock time since the last packet, and (VP8) its picture ids and
 * TL0PICIDX follow too. A run starts on `switchSource()` and its first packet; packets of
 * the same source older than that first packet are dropped (their numbers are taken).
 *
 * The first run keeps the publisher's numbers (zero offsets): a leg that never switches
 * sees exactly what it would without the munger. Per packet: arithmetic and in-place
 * writes, no allocation.
 */
export class RtpMunger {
  private seqOffset = 0;
  private tsOffset = 0;
  private pictureIdOffset = 0;
  private tl0Offset = 0;
  /** The last (newest) values sent, and when. */
  private lastSeq = 0;
  private lastTs = 0;
  private lastPictureId = -1;
  private lastTl0 = -1;
  private lastAt = 0;
  /** The publisher's sequence number that opened the current run. */
  private runStart = 0;
  private started = false;
  private pending = true;
  /** Packets sent in the current run (for NACK mapping: none yet means nothing maps). */
  private inRun = 0;

  constructor(private readonly clockRate: number) {}

  /** The next packet passed to `rewrite` starts a run from another source. */
  switchSource(): void {
    this.pending = true;
  }

  /**
   * Rewrites `packet` for this subscriber: its sequence number, timestamp and (when `vp8`
   * was read from it) picture id and TL0PICIDX, computed from the publisher's values given
   * (read once per packet by the caller, however many legs it goes to; -1: absent). False:
   * the packet predates the run, do not send it.
   */
  rewrite(
    packet: Buffer,
    seq: number,
    ts: number,
    pictureId: number,
    tl0: number,
    vp8: Vp8Descriptor | undefined,
    nowMs: number,
  ): boolean {
    if (this.pending) {
      this.pending = false;
      this.runStart = seq;
      this.inRun = 0;
      if (this.started) {
        this.seqOffset = (this.lastSeq + 1 - seq) & 0xffff;
        // At least one tick, so the first frame of the run is a new frame to the decoder.
        const elapsed = Math.max(1, Math.round(((nowMs - this.lastAt) * this.clockRate) / 1000));
        this.tsOffset = (this.lastTs + elapsed - ts) >>> 0;
        if (pictureId >= 0 && this.lastPictureId >= 0)
          this.pictureIdOffset = (this.lastPictureId + 1 - pictureId) & 0x7fff;
        if (tl0 >= 0 && this.lastTl0 >= 0) this.tl0Offset = (this.lastTl0 + 1 - tl0) & 0xff;
      }
    } else if (seqDiff(seq, this.runStart) < 0) {
      return false;
    }
    const outSeq = (seq + this.seqOffset) & 0xffff;
    const outTs = (ts + this.tsOffset) >>> 0;
    // Byte writes, not writeUInt*BE: this runs per packet and leg.
    packet[2] = outSeq >> 8;
    packet[3] = outSeq & 0xff;
    packet[4] = outTs >>> 24;
    packet[5] = (outTs >>> 16) & 0xff;
    packet[6] = (outTs >>> 8) & 0xff;
    packet[7] = outTs & 0xff;
    let outPictureId = -1;
    if (pictureId >= 0) {
      outPictureId = (pictureId + this.pictureIdOffset) & 0x7fff;
      vp8!.setPictureId(packet, outPictureId);
    }
    let outTl0 = -1;
    if (tl0 >= 0) {
      outTl0 = (tl0 + this.tl0Offset) & 0xff;
      vp8!.setTl0(packet, outTl0);
    }
    if (!this.started || this.inRun === 0 || seqDiff(outSeq, this.lastSeq) > 0) {
      this.started = true;
      this.lastSeq = outSeq;
      this.lastTs = outTs;
      this.lastAt = nowMs;
      if (outPictureId >= 0) this.lastPictureId = outPictureId;
      if (outTl0 >= 0) this.lastTl0 = outTl0;
    }
    this.inRun++;
    return true;
  }

  /**
   * Rewrites a packet of the current run being sent again (a NACK answered): the run's
   * offsets, nothing learned from it.
   */
  rewriteResent(packet: Buffer, vp8: Vp8Descriptor | undefined): void {
    packet.writeUInt16BE((packet.readUInt16BE(2) + this.seqOffset) & 0xffff, 2);
    packet.writeUInt32BE((packet.readUInt32BE(4) + this.tsOffset) >>> 0, 4);
    if (!vp8) return;
    const pictureId = vp8.pictureId(packet);
    if (pictureId >= 0) vp8.setPictureId(packet, pictureId + this.pictureIdOffset);
    const tl0 = vp8.tl0(packet);
    if (tl0 >= 0) vp8.setTl0(packet, tl0 + this.tl0Offset);
  }

  /**
   * The publisher's sequence number a subscriber's `outSeq` stands for in the current run
   * (to answer its NACK); -1 when that number was not sent from this run.
   */
  sourceSeq(outSeq: number): number {
    if (this.pending || this.inRun === 0) return -1;
    const seq = (outSeq - this.seqOffset) & 0xffff;
    if (seqDiff(seq, this.runStart) < 0 || seqDiff(outSeq, this.lastSeq) > 0) return -1;
    return seq;
  }
}
