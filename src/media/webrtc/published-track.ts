import { randomInt } from 'node:crypto';
import type { Track } from 'node-datachannel';
import { TokenBucket } from '../../lib/token-bucket.js';
import type { CodecChoice } from './codec-policy.js';
import type { ReceptionReport } from './rtp.js';
import type { LegLayer } from './leg-layer.js';
import type { SimulcastTrack } from './simulcast-track.js';
import type { AudioLevelMeter } from './audio-level.js';
import { wrapRtx } from './rtx-packet.js';
import { setRedBlockTypes, writeRedPrimary } from './red-packet.js';

/** One subscriber's sending side of a published track. */
export interface ForwardTarget {
  readonly track: Track;
  /** The payload type this subscriber negotiated for the codec. */
  readonly payloadType: number;
  open: boolean;
  /** Who receives (for stats). */
  readonly subscriber: string;
  /** The subscriber's last receiver report about this stream; `at` 0 until one came. */
  readonly report: ReceptionReport & { at: number };
  /** Set when the subscriber negotiated RTX: its RTX payload type and next RTX sequence number. */
  readonly rtx?: { readonly payloadType: number; seq: number };
  /** Set when the subscriber negotiated Opus RED: its RED payload type. */
  readonly red?: number;
  /** A video leg's simulcast state: which layer it receives (unused for one encoding). */
  readonly layer?: LegLayer;
}

/**
 * Where a track's keyframe requests go: the publisher's own leg (a node-datachannel
 * Track), or, for a track relayed from another node, that node over the bus.
 */
export interface KeyframeSource {
  isOpen(): boolean;
  /** False when the request could not be sent yet; `force` passes the request on unthrottled. */
  requestKeyframe(force?: boolean): boolean;
}

/**
 * A track a publisher sends, and the subscribers it is forwarded to. Forwarding
 * rewrites the SSRC once (to the track's outgoing SSRC, the same for every subscriber)
 * and the payload type per subscriber, in the packet's own buffer: node-datachannel
 * copies on send, so no buffer is allocated per subscriber.
 *
 * Retransmission: the track keeps its last packets, by sequence number, in one history
 * shared by all its subscribers (the SFU passes sequence numbers through, so a
 * subscriber's NACK names the publisher's packet). libdatachannel's own NACK responder
 * would copy every packet into a history per subscriber: a copy and an allocation per
 * packet and subscriber, and hundreds of KiB per leg.
 */
export class PublishedTrack {
  readonly targets: ForwardTarget[] = [];
  packetsIn = 0;
  packetsOut = 0;
  keyframeRequests = 0;
  retransmissions = 0;
  /** Set by the publisher's InboundTrack: sequence numbers it NACKed, packets RTX repaired. */
  nacksSent = 0;
  rtxRepaired = 0;
  /** The SSRC retransmissions go out on to subscribers that negotiated RTX (RFC 4588). */
  readonly rtxSsrc = randomInt(1, 0xffffffff);
  /** Reads the audio level extension (RFC 6464) of each packet, when negotiated. */
  audioLevel: AudioLevelMeter | undefined = undefined;
  /** Where RTX packets are built (node-datachannel copies on send); made on first use. */
  private rtxScratch: Buffer | undefined;
  /** The publisher's Opus RED payload type (RFC 2198), when it sends RED. */
  redPayloadType: number | undefined = undefined;
  /** Where a RED packet's primary is built, and views of it by length (made once each). */
  private redScratch: Buffer | undefined;
  private readonly redViews: Array<Buffer | undefined> = [];
  /** One keyframe request per interval: a bucket of burst 1. */
  private readonly keyframeThrottle: TokenBucket;
  /** The packets node-datachannel handed us (a fresh buffer each): kept, not copied. */
  private readonly history: Array<Buffer | undefined>;
  private ended = false;
  /** A keyframe was wanted before the publisher's media flowed: ask on its next packet. */
  private keyframePending = false;

  constructor(
    readonly kind: 'audio' | 'video',
    readonly codec: CodecChoice,
    readonly outSsrc: number,
    readonly source: KeyframeSource,
    keyframeIntervalMs: number,
    /** Packets kept for retransmission; 0 turns it off. */
    historyPackets: number,
  ) {
    this.keyframeThrottle = TokenBucket.everyMs(keyframeIntervalMs);
    this.history = new Array<Buffer | undefined>(historyPackets);
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Sends that threw (a track closing under the packet). */
  sendErrors = 0;

  /**
   * Set while other nodes receive this track: each packet is handed over once, after the
   * local targets (it is not written to afterwards, as the bus may send it later).
   */
  relay: ((packet: Buffer) => void) | undefined = undefined;

  /** Set when the publisher sends simulcast: layers, and one of them per leg. */
  simulcast: SimulcastTrack | undefined = undefined;

  /** A muted track forwards nothing (to local subscribers or other nodes). */
  muted = false;

  /** The hot path: one RTP packet from the publisher. */
  forward(packet: Buffer): void {
    this.packetsIn++;
    if (packet.length < 12 || this.muted) return;
    if (this.simulcast !== undefined) return this.simulcast.forward(packet);
    if (this.keyframePending) this.requestKeyframe(true);
    packet.writeUInt32BE(this.outSsrc, 8);
    if (this.audioLevel !== undefined) this.audioLevel.observe(packet);
    const history = this.history;
    if (history.length > 0) history[packet.readUInt16BE(2) % history.length] = packet;
    const marker = packet[1]! & 0x80;
    if (this.redPayloadType === (packet[1]! & 0x7f)) return this.forwardRed(packet, marker);
    const targets = this.targets;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      if (!t.open) continue;
      packet[1] = marker | t.payloadType;
      // No isOpen() first: that is a second native call per packet and subscriber. `open`
      // is set by the track's open event and cleared when its peer closes (which removes
      // the target); a send that races a close throws and is counted. No onClosed per
      // track on purpose: each native callback is a libuv async handle, and libuv scans
      // all of them on every wake-up.
      try {
        t.track.sendMessageBinary(packet);
        this.packetsOut++;
      } catch {
        this.sendErrors++;
      }
    }
    if (this.relay !== undefined) this.relay(packet);
  }

  /**
   * A RED packet: as it is (with the subscriber's payload types) to subscribers that
   * negotiated RED, its primary block alone to the others; to other nodes as the
   * publisher sent it.
   */
  private forwardRed(packet: Buffer, marker: number): void {
    let primary = -1; // the primary's length in redScratch, built for the first that needs it
    const targets = this.targets;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      if (!t.open) continue;
      let out: Buffer;
      if (t.red !== undefined) {
        if (!setRedBlockTypes(packet, t.payloadType)) return; // malformed: dropped
        packet[1] = marker | t.red;
        out = packet;
      } else {
        const scratch = (this.redScratch ??= Buffer.alloc(2048));
        if (primary < 0) primary = writeRedPrimary(packet, scratch, this.codec.payloadType);
        if (primary === 0) continue;
        scratch[1] = marker | t.payloadType;
        out = this.redViews[primary] ??= scratch.subarray(0, primary);
      }
      try {
        t.track.sendMessageBinary(out);
        this.packetsOut++;
      } catch {
        this.sendErrors++;
      }
    }
    packet[1] = marker | this.redPayloadType!;
    if (this.relay !== undefined && setRedBlockTypes(packet, this.codec.payloadType)) this.relay(packet);
  }

  /** Resends a packet `target` NACKed, if the history still holds it. */
  resend(seq: number, target: ForwardTarget): boolean {
    if (this.simulcast !== undefined) return this.simulcast.resend(seq, target);
    const history = this.history;
    if (history.length === 0 || !target.open) return false;
    const packet = history[seq % history.length];
    if (!packet || packet.readUInt16BE(2) !== seq) return false;
    // RED is audio, which browsers do not NACK: not resent.
    if ((packet[1]! & 0x7f) === this.redPayloadType) return false;
    packet[1] = (packet[1]! & 0x80) | target.payloadType;
    let out = packet;
    if (target.rtx !== undefined) {
      // As RTX: the subscriber tells a repair from new media (its loss figures stay right).
      const scratch = (this.rtxScratch ??= Buffer.alloc(2048));
      const length = wrapRtx(packet, scratch, target.rtx.payloadType, this.rtxSsrc, target.rtx.seq);
      if (length === 0) return false;
      target.rtx.seq = (target.rtx.seq + 1) & 0xffff;
      out = scratch.subarray(0, length);
    }
    try {
      target.track.sendMessageBinary(out);
      this.retransmissions++;
      return true;
    } catch {
      this.sendErrors++;
      return false;
    }
  }

  /** Asks the publisher for a keyframe, at most once per interval (unless forced). */
  requestKeyframe(force = false): boolean {
    if (this.kind !== 'video' || this.ended) return false;
    const now = Date.now();
    // Only looked at here; spent below once a PLI really went out.
    if (!force && this.keyframeThrottle.msUntilToken(now) > 0) return false;
    if (this.simulcast !== undefined) {
      // Per layer, to the layers legs receive (simulcast-track.ts counts the requests).
      if (this.simulcast.requestKeyframe(force)) this.keyframeThrottle.drain(now);
      return true;
    }
    // The PLI needs an open transport and the publisher's SSRC (seen on its first packet).
    if (!this.source.isOpen() || this.packetsIn === 0 || !this.source.requestKeyframe(force)) {
      this.keyframePending = true;
      return false;
    }
    this.keyframePending = false;
    this.keyframeThrottle.drain(now);
    this.keyframeRequests++;
    return true;
  }

  addTarget(t: ForwardTarget): void {
    this.targets.push(t);
    this.simulcast?.attach(t);
  }

  removeTarget(t: ForwardTarget): void {
    const i = this.targets.indexOf(t);
    if (i >= 0) this.targets.splice(i, 1);
  }

  end(): void {
    this.ended = true;
    this.simulcast?.end();
    this.relay = undefined;
    this.targets.length = 0;
    this.history.fill(undefined);
  }
}
