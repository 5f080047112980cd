import { randomInt } from 'node:crypto';
import type { Track } from 'node-datachannel';
import { NackGenerator } from './nack-generator.js';
import type { KeyframeSource } from './published-track.js';
import { RTCP_PSFB, RTCP_RR, RTCP_SR, isRtcp } from './rtp.js';
import { unwrapRtx } from './rtx-packet.js';

/** Where the receiving side's counters go (the published track, for the statistics). */
export interface InboundCounters {
  /** Sequence numbers NACKed to the publisher (each try counts). */
  nacksSent: number;
  /** Packets the publisher's RTX repaired. */
  rtxRepaired: number;
}

/** What the SFU negotiated to receive on one publisher section. */
export interface InboundOptions {
  clockRate: number;
  /** The main stream's payload type. */
  payloadType: number;
  /** The RTX payload type (RFC 4588) the publisher may retransmit with; undefined: none. */
  rtxPayloadType: number | undefined;
  /** NACK the publisher for lost packets (the section offered `nack` feedback). */
  nack: boolean;
}

/**
 * The SFU's receiving side of one publisher track, in place of libdatachannel's
 * RtcpReceivingSession (which sends only on SRs, cannot NACK, and takes RTX packets for
 * the main stream): it keeps the reception statistics of RFC 3550 A.1/A.3/A.8 and answers
 * each sender report with a receiver report, NACKs lost packets (NackGenerator), turns
 * RTX packets back into the packets they repair, and sends keyframe requests (PLI).
 *
 * Without a media handler on the track, libdatachannel sends whatever RTCP we give it
 * whatever the section's direction (a handler would make it refuse sends on a receive-only
 * track), which is why this is done here and not in a handler chain.
 */
export class InboundTrack implements KeyframeSource {
  /** Our SSRC as an RTCP sender on this leg. */
  readonly ssrc = randomInt(1, 0xffffffff);
  /** The publisher's main SSRC, from its first packet (0 until then). */
  mediaSsrc = 0;
  readonly nacks = new NackGenerator();
  /** RTX packets received (padding and all). */
  rtxReceived = 0;
  counters: InboundCounters = { nacksSent: 0, rtxRepaired: 0 };
  private readonly pli = Buffer.alloc(12);
  private readonly rr = Buffer.alloc(32);
  // RFC 3550 A.1: reception state of the main stream.
  private baseSeq = 0;
  private maxSeq = 0;
  private cycles = 0;
  private received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private transit = 0;
  private jitter = 0;
  /** Middle 32 bits of the last SR's NTP time, and when it came (ms). */
  private lastSr = 0;
  private lastSrAt = 0;
  private readonly msToRtp: number;

  constructor(
    readonly track: Track,
    private readonly options: InboundOptions,
  ) {
    this.msToRtp = options.clockRate / 1000;
  }

  /**
   * Handles one packet from the publisher at `now` (ms). Returns the RTP packet to forward
   * (an RTX packet comes back as the packet it repairs), or undefined for RTCP and for
   * what repairs nothing.
   */
  receive(packet: Buffer, now: number): Buffer | undefined {
    if (isRtcp(packet)) {
      this.receiveRtcp(packet, now);
      return undefined;
    }
    if (packet.length < 12) return undefined;
    let p: Buffer | undefined = packet;
    const pt = packet[1]! & 0x7f;
    if (pt === this.options.rtxPayloadType) {
      this.rtxReceived++;
      if (this.mediaSsrc === 0) return undefined;
      p = unwrapRtx(packet, this.options.payloadType, this.mediaSsrc);
      if (p === undefined) return undefined;
      this.counters.rtxRepaired++;
    } else if (this.mediaSsrc === 0) {
      this.mediaSsrc = packet.readUInt32BE(8);
      this.baseSeq = this.maxSeq = packet.readUInt16BE(2);
    } else if (packet.readUInt32BE(8) !== this.mediaSsrc) {
      return packet; // another stream on this section (simulcast): not ours to count
    }
    const seq = p.readUInt16BE(2);
    this.count(seq, p === packet ? p.readUInt32BE(4) : -1, now);
    if (this.options.nack) {
      this.nacks.received(seq, now);
      const nack = this.nacks.due(now, this.ssrc, this.mediaSsrc);
      if (nack !== undefined) {
        this.counters.nacksSent = this.nacks.nacked;
        this.send(nack);
      }
    }
    return p;
  }

  isOpen(): boolean {
    return this.track.isOpen();
  }

  requestKeyframe(): boolean {
    if (this.mediaSsrc === 0) return false;
    const b = this.pli;
    b[0] = 0x81;
    b[1] = RTCP_PSFB;
    b.writeUInt16BE(2, 2);
    b.writeUInt32BE(this.ssrc, 4);
    b.writeUInt32BE(this.mediaSsrc, 8);
    return this.send(b);
  }

  /** RFC 3550 A.1 (sequence and cycles) and A.8 (jitter; `rtpTime` -1 for a repair). */
  private count(seq: number, rtpTime: number, now: number): void {
    this.received++;
    const delta = (seq - this.maxSeq) & 0xffff;
    if (delta > 0 && delta < 0x8000) {
      if (seq < this.maxSeq) this.cycles += 0x10000;
      this.maxSeq = seq;
    }
    if (rtpTime < 0 || delta === 0 || delta >= 0x8000) return; // only new, in-order packets
    const transit = now * this.msToRtp - rtpTime;
    if (this.transit !== 0) {
      const d = Math.abs(transit - this.transit);
      // A timestamp jump (a new stream) would poison the average: skip it.
      if (d < this.options.clockRate * 10) this.jitter += (d - this.jitter) / 16;
    }
    this.transit = transit;
  }

  private receiveRtcp(packet: Buffer, now: number): void {
    // The SR leads its compound; answer it (as libdatachannel's session did) with an RR.
    if (packet.length < 28 || packet[1] !== RTCP_SR) return;
    const sender = packet.readUInt32BE(4);
    if (sender !== this.mediaSsrc || this.mediaSsrc === 0) return;
    this.lastSr = ((packet.readUInt32BE(8) & 0xffff) << 16) | (packet.readUInt32BE(12) >>> 16);
    this.lastSrAt = now;
    this.send(this.receiverReport(now));
  }

  /** RFC 3550 6.4.2 and A.3: one report block about the main stream. */
  private receiverReport(now: number): Buffer {
    const b = this.rr;
    const extended = this.cycles + this.maxSeq;
    const expected = extended - this.baseSeq + 1;
    const lost = Math.max(-0x800000, Math.min(0x7fffff, expected - this.received));
    const expectedInterval = expected - this.expectedPrior;
    const lostInterval = expectedInterval - (this.received - this.receivedPrior);
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    const fraction =
      expectedInterval <= 0 || lostInterval <= 0
        ? 0
        : Math.min(255, Math.floor((lostInterval * 256) / expectedInterval));
    b[0] = 0x81;
    b[1] = RTCP_RR;
    b.writeUInt16BE(7, 2);
    b.writeUInt32BE(this.ssrc, 4);
    b.writeUInt32BE(this.mediaSsrc, 8);
    b[12] = fraction;
    b.writeIntBE(lost, 13, 3);
    b.writeUInt32BE(extended >>> 0, 16);
    b.writeUInt32BE(Math.floor(this.jitter) >>> 0, 20);
    b.writeUInt32BE(this.lastSr >>> 0, 24);
    b.writeUInt32BE(this.lastSrAt > 0 ? Math.floor(((now - this.lastSrAt) * 65536) / 1000) >>> 0 : 0, 28);
    return b;
  }

  private send(packet: Buffer): boolean {
    try {
      return this.track.sendMessageBinary(packet);
    } catch {
      return false; // the track closed under us: its leg is going
    }
  }
}
