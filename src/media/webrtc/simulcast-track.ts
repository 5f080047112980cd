import { isKeyframe, rtpPayloadOffset } from './keyframe.js';
import {
  chooseLayer,
  estimateCovers,
  maxRankFor,
  rankLayers,
  UP_SWITCH_HEADROOM,
  wantedLayers,
  type LayerPreference,
  type LayerState,
} from './layer-choice.js';
import {
  PROBE_BACKOFF_MAX_MS,
  PROBE_BACKOFF_MIN_MS,
  PROBE_FAILED_WITHIN_MS,
  type LegLayer,
} from './leg-layer.js';
import type { ProbeInput } from './leg-prober.js';
import type { ForwardTarget, PublishedTrack } from './published-track.js';
import { findHeaderExtension, type ExtensionSpan } from './rtp.js';
import { MAX_LAYERS } from './simulcast-sdp.js';
import { Vp8Descriptor } from './vp8-descriptor.js';

/**
 * How a packet's layer is told: by its rid (the rtp-stream-id header extension, learned
 * once per SSRC), by its SSRC's place in an `a=ssrc-group:SIM`, or, on a node receiving
 * the track through the relay, by the layer index the publishing node wrote in the SSRC
 * field (relay-outlet's wire: see docs/sfu.md).
 */
export type LayerKeying =
  | { by: 'rid'; rids: readonly string[]; extension: number }
  | { by: 'ssrc'; ssrcs: readonly number[] }
  | { by: 'relay'; layers: number };

/** Where a layer's key frames are asked for: the publisher's leg, or its node over the bus. */
export interface LayerKeyframeSource {
  requestLayerKeyframe(layer: number, ssrc: number, force: boolean): void;
  /** The track ended: stop what runs on a timer. */
  close?(): void;
}

/** How often layers are measured and legs' layers chosen. */
export const SELECT_EVERY_MS = 500;
/** A layer without packets for this long is paused (or gone). */
const INACTIVE_AFTER_MS = 1_500;
/** A leg waiting for a layer's key frame asks again after this long. */
const KEYFRAME_RETRY_MS = 1_000;

/** Reception of one layer, for the receiver reports its publisher gets. */
export interface LayerReception {
  ssrc: number;
  /** Extended highest sequence number (cycles in the upper 16 bits); -1 before a packet. */
  highestSeq: number;
  received: number;
  /** The first extended sequence number seen. */
  baseSeq: number;
}

/**
 * The simulcast side of a PublishedTrack: its packets come in several layers (encodings of
 * one picture at several sizes), and each subscriber leg gets one of them at a time. A leg
 * switches layer on a key frame of the new one (asked for with a PLI on that layer's SSRC),
 * through its RtpMunger, so it sees one stream. Layers are chosen every SELECT_EVERY_MS
 * from the leg's REMB and the size it asked for (layer-choice.ts).
 *
 * Per packet: the layer lookup (a scan of at most MAX_LAYERS SSRCs), the VP8 descriptor
 * read, per leg the munger's rewrite, and once the publisher's values written back (the
 * buffer is shared: history, relay). Nothing is allocated.
 */
export class SimulcastTrack {
  readonly layers: LayerState[];
  readonly reception: LayerReception[];
  /** Packets whose layer could not be told (no rid yet, an unknown rid or SSRC). */
  unknownPackets = 0;
  /** Layer switches over all legs. */
  switches = 0;
  /** Called when the set of layers the publisher should send changes (true = wanted). */
  onWanted: ((wanted: readonly boolean[]) => void) | undefined = undefined;
  /** Called once when the track ends. */
  onEnd: (() => void) | undefined = undefined;
  /**
   * The layers other nodes' legs receive (the union of what each node receiving the track
   * said, relay-outlet.ts); undefined while relayed: all of them (a node that did not say).
   */
  relayWanted: readonly boolean[] | undefined = undefined;
  /** The layers' names, in the offer's order: rids, `ssrc:<n>`, or `layer:<i>` on a relayed track. */
  readonly names: readonly string[];
  private wanted: boolean[];
  private readonly ssrcs: number[];
  private readonly histories: Array<Array<Buffer | undefined>>;
  private readonly bytes: number[];
  private readonly lastPacketAt: number[];
  private readonly lastAsk: number[];
  private readonly vp8 = new Vp8Descriptor();
  private readonly span: ExtensionSpan = { offset: 0, length: 0 };
  private readonly ridBytes: Buffer[];
  private readonly timer: NodeJS.Timeout;
  private lastTick = Date.now();
  /** What a leg's prober is told at each choice (one object, written again per leg). */
  private readonly probeInput: ProbeInput = {
    wantsUp: false,
    currentBps: 0,
    upBps: 0,
    estimate: -1,
    lossAvg: 0,
    fellAt: 0,
  };

  constructor(
    private readonly track: PublishedTrack,
    private readonly keying: LayerKeying,
    private readonly keyframes: LayerKeyframeSource,
    historyPackets: number,
  ) {
    const n =
      keying.by === 'rid' ? keying.rids.length : keying.by === 'ssrc' ? keying.ssrcs.length : keying.layers;
    const count = Math.max(1, Math.min(MAX_LAYERS, n));
    const each = () => Array.from({ length: count }, () => 0);
    this.layers = Array.from({ length: count }, () => ({ active: false, bps: 0, width: 0, height: 0 }));
    this.reception = Array.from({ length: count }, () => ({
      ssrc: 0,
      highestSeq: -1,
      received: 0,
      baseSeq: 0,
    }));
    this.ssrcs = keying.by === 'ssrc' ? keying.ssrcs.slice(0, count) : each();
    this.histories = Array.from({ length: count }, () => new Array<Buffer | undefined>(historyPackets));
    this.bytes = each();
    this.lastPacketAt = each();
    this.lastAsk = each();
    this.ridBytes = keying.by === 'rid' ? keying.rids.map((r) => Buffer.from(r, 'ascii')) : [];
    this.wanted = this.layers.map(() => true);
    this.names = this.layers.map((_, i) =>
      keying.by === 'rid' ? keying.rids[i]! : keying.by === 'ssrc' ? `ssrc:${keying.ssrcs[i]}` : `layer:${i}`,
    );
    this.timer = setInterval(() => this.select(Date.now()), SELECT_EVERY_MS);
    this.timer.unref();
  }

  /** The SSRC a layer arrives with here (0 until its first packet, for rid layers). */
  layerSsrc(layer: number): number {
    return this.ssrcs[layer] ?? 0;
  }

  /** The packet's layer, or -1. */
  private layerOf(packet: Buffer): number {
    const ssrc = packet.readUInt32BE(8);
    if (this.keying.by === 'relay') return ssrc < this.layers.length ? ssrc : -1;
    const ssrcs = this.ssrcs;
    for (let i = 0; i < ssrcs.length; i++) if (ssrcs[i] === ssrc) return i;
    if (this.keying.by !== 'rid' || !findHeaderExtension(packet, this.keying.extension, this.span)) return -1;
    // A new SSRC with its rid: learned once (Chromium sends the rid until it gets reports).
    const { offset, length } = this.span;
    for (let i = 0; i < this.ridBytes.length; i++) {
      const rid = this.ridBytes[i]!;
      if (rid.length === length && rid.equals(packet.subarray(offset, offset + length))) {
        ssrcs[i] = ssrc;
        this.reception[i]!.ssrc = ssrc;
        this.reception[i]!.highestSeq = -1;
        return i;
      }
    }
    return -1;
  }

  /** One RTP packet of the track (its SSRC not yet rewritten). */
  forward(packet: Buffer): void {
    const layer = this.layerOf(packet);
    if (layer < 0) {
      this.unknownPackets++;
      return;
    }
    const t = this.track;
    const now = Date.now();
    this.noteReception(layer, packet);
    const state = this.layers[layer]!;
    state.active = true;
    this.bytes[layer]! += packet.length;
    this.lastPacketAt[layer] = now;
    const seq = packet.readUInt16BE(2);
    const ts = packet.readUInt32BE(4);
    const history = this.histories[layer]!;
    if (history.length > 0) history[seq % history.length] = packet;
    let vp8: Vp8Descriptor | undefined;
    let keyframe: boolean;
    if (t.codec.name === 'VP8') {
      vp8 = this.vp8.read(packet, rtpPayloadOffset(packet)) ? this.vp8 : undefined;
      keyframe = vp8 !== undefined && vp8.keyframe;
      if (keyframe) this.readVp8Size(packet, state);
    } else keyframe = isKeyframe(t.codec.name, packet);
    const pictureId = vp8 ? vp8.pictureId(packet) : -1;
    const tl0 = vp8 ? vp8.tl0(packet) : -1;
    const marker = packet[1]! & 0x80;
    packet.writeUInt32BE(t.outSsrc, 8);
    const targets = t.targets;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      const leg = target.layer;
      if (!target.open || leg === undefined) continue;
      if (leg.current !== layer) {
        if (leg.target !== layer || !keyframe) continue;
        leg.current = layer;
        leg.munger.switchSource();
        leg.switches++;
        this.switches++;
      }
      // Each leg's munger writes every field it changes from the publisher's values, so
      // nothing is undone between legs; once after the last one.
      if (!leg.munger.rewrite(packet, seq, ts, pictureId, tl0, vp8, now)) continue;
      packet[1] = marker | target.payloadType;
      try {
        target.track.sendMessageBinary(packet);
        t.packetsOut++;
      } catch {
        t.sendErrors++;
      }
    }
    packet.writeUInt16BE(seq, 2);
    packet.writeUInt32BE(ts, 4);
    if (pictureId >= 0) vp8!.setPictureId(packet, pictureId);
    if (tl0 >= 0) vp8!.setTl0(packet, tl0);
    // The layer travels in the SSRC field to other nodes (and tells resend whose it is).
    packet.writeUInt32BE(layer, 8);
    if (t.relay !== undefined) t.relay(packet);
  }

  private noteReception(layer: number, packet: Buffer): void {
    const r = this.reception[layer]!;
    const seq = packet.readUInt16BE(2);
    if (r.highestSeq < 0) {
      r.highestSeq = seq;
      r.baseSeq = seq;
      r.received = 1;
      return;
    }
    r.received++;
    const last = r.highestSeq & 0xffff;
    const diff = ((seq - last + 0x8000) & 0xffff) - 0x8000;
    if (diff > 0) r.highestSeq += diff;
  }

  /** A VP8 key frame's size (RFC 6386 9.1: start code, then 14-bit width and height). */
  private readVp8Size(packet: Buffer, state: LayerState): void {
    const d = this.vp8;
    let at = rtpPayloadOffset(packet) + 1;
    if (packet[at - 1]! & 0x80) {
      const x = packet[at++]!;
      if (x & 0x80) at += d.longPictureId ? 2 : 1;
      if (x & 0x40) at++;
      if (x & 0x30) at++;
    }
    if (
      at + 10 > packet.length ||
      packet[at + 3] !== 0x9d ||
      packet[at + 4] !== 0x01 ||
      packet[at + 5] !== 0x2a
    )
      return;
    state.width = packet.readUInt16LE(at + 6) & 0x3fff;
    state.height = packet.readUInt16LE(at + 8) & 0x3fff;
  }

  /** Sends again a packet `target` NACKed, from the history of the layer it receives. */
  resend(seq: number, target: ForwardTarget): boolean {
    const leg = target.layer;
    if (!target.open || leg === undefined || leg.current < 0) return false;
    const source = leg.munger.sourceSeq(seq);
    const history = this.histories[leg.current]!;
    if (source < 0 || history.length === 0) return false;
    const packet = history[source % history.length];
    if (!packet || packet.readUInt16BE(2) !== source) return false;
    const t = this.track;
    const vp8 =
      t.codec.name === 'VP8' && this.vp8.read(packet, rtpPayloadOffset(packet)) ? this.vp8 : undefined;
    const pictureId = vp8 ? vp8.pictureId(packet) : -1;
    const tl0 = vp8 ? vp8.tl0(packet) : -1;
    const b1 = packet[1]!;
    const ts = packet.readUInt32BE(4);
    const layerField = packet.readUInt32BE(8);
    packet[1] = (b1 & 0x80) | target.payloadType;
    packet.writeUInt32BE(t.outSsrc, 8);
    leg.munger.rewriteResent(packet, vp8);
    let sent = false;
    try {
      target.track.sendMessageBinary(packet);
      t.retransmissions++;
      sent = true;
    } catch {
      t.sendErrors++;
    }
    packet[1] = b1;
    packet.writeUInt16BE(source, 2);
    packet.writeUInt32BE(ts, 4);
    packet.writeUInt32BE(layerField, 8);
    if (pictureId >= 0) vp8!.setPictureId(packet, pictureId);
    if (tl0 >= 0) vp8!.setTl0(packet, tl0);
    return sent;
  }

  /** A new leg: its layer is chosen now, and a key frame of it asked for. */
  attach(target: ForwardTarget): void {
    if (target.layer) this.choose(target.layer, Date.now(), true);
  }

  /**
   * A key frame for every layer some leg receives or waits for (a subscriber's PLI: the
   * track's throttle has passed it). True when one was asked for.
   */
  requestKeyframe(force: boolean): boolean {
    const now = Date.now();
    let asked = false;
    for (let i = 0; i < this.layers.length; i++) {
      if (!this.track.targets.some((t) => t.layer && (t.layer.current === i || t.layer.target === i)))
        continue;
      this.ask(i, now, force);
      asked = true;
    }
    return asked;
  }

  /** A key frame of one layer (from another node relaying to us: its legs' want). */
  requestLayerKeyframe(layer: number, force: boolean): void {
    if (layer >= 0 && layer < this.layers.length) this.ask(layer, Date.now(), force);
  }

  private ask(layer: number, now: number, force: boolean): void {
    if (!force && now - this.lastAsk[layer]! < KEYFRAME_RETRY_MS) return;
    this.lastAsk[layer] = now;
    this.track.keyframeRequests++;
    this.keyframes.requestLayerKeyframe(layer, this.ssrcs[layer] ?? 0, force);
  }

  /** Measures the layers, chooses each leg's, and says which layers are wanted. */
  select(now: number): void {
    const seconds = Math.max(0.001, (now - this.lastTick) / 1000);
    this.lastTick = now;
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i]!;
      l.active = now - this.lastPacketAt[i]! < INACTIVE_AFTER_MS;
      if (this.bytes[i]! > 0) {
        const bps = (this.bytes[i]! * 8) / seconds;
        l.bps = l.bps > 0 ? 0.5 * l.bps + 0.5 * bps : bps;
      }
      this.bytes[i] = 0;
    }
    const prefs: LayerPreference[] = [];
    for (const t of this.track.targets) {
      if (!t.layer) continue;
      this.choose(t.layer, now, false);
      prefs.push(t.layer.preference);
    }
    const remote = this.track.relay === undefined ? undefined : this.relayWanted;
    const wanted = wantedLayers(this.layers, prefs, this.track.relay !== undefined && remote === undefined);
    if (remote) for (let i = 0; i < wanted.length; i++) wanted[i] = wanted[i]! || remote[i] === true;
    if (wanted.some((w, i) => w !== this.wanted[i])) {
      this.wanted = wanted;
      this.onWanted?.(wanted);
    }
  }

  /** The layers the publisher should send now (true = wanted). */
  wantedLayers(): readonly boolean[] {
    return this.wanted;
  }

  private choose(leg: LegLayer, now: number, fresh: boolean): void {
    if (leg.preference.active === false) {
      // Shown nowhere: nothing forwarded; turned on again, the chosen layer's next key
      // frame restarts it (the munger splices across the gap as across a layer switch).
      leg.target = -1;
      leg.current = -1;
      leg.prober?.stop();
      return;
    }
    const from = leg.target >= 0 ? leg.target : leg.current;
    const ranked = rankLayers(this.layers);
    leg.noteHeld(now);
    leg.applyLoss(this.layers, ranked, now);
    let choice = chooseLayer(this.layers, from, leg.preference, leg.limitBps);
    const rank = (i: number): number => ranked.indexOf(i);
    if (
      leg.staleUntil > 0 &&
      leg.current >= 0 &&
      rank(leg.current) >= maxRankFor(this.layers, ranked, leg.preference) &&
      leg.estimate(now) >= this.layers[leg.current]!.bps
    ) {
      // A fresh start's REMB now covers the layer the leg's size allows: no longer stale.
      leg.staleUntil = 0;
    }
    if (
      !leg.limitFellSinceChoice() &&
      rank(choice) < rank(from) &&
      this.layers[from]?.active === true &&
      rank(chooseLayer(this.layers, from, leg.preference, -1)) >= rank(from)
    ) {
      // Down only at a fall of the leg's limit (leg-layer.ts): its size and the layers sent
      // still allow `from`, which only measures more now than the limit was set against.
      choice = from;
    }
    if (leg.probedAt > 0 && now - leg.probedAt >= PROBE_FAILED_WITHIN_MS) {
      // The try up held: the next one may come soon.
      leg.probedAt = 0;
      leg.probeBackoffMs = PROBE_BACKOFF_MIN_MS;
    }
    if (leg.probedAt > 0 && rank(choice) < rank(from)) {
      // Down again soon after trying up: the link did not take it; wait longer next time.
      leg.probeBackoffMs = Math.min(PROBE_BACKOFF_MAX_MS, leg.probeBackoffMs * 2);
      leg.probedAt = 0;
      leg.nextProbeAt = now + leg.probeBackoffMs;
    }
    if (leg.prober !== undefined && this.probe(leg, ranked, from, choice, now)) {
      // The probe's padding raised the leg's REMB over the next layer: up, judged as a try.
      const up = ranked[rank(from) + 1]!;
      if (rank(choice) < rank(up)) choice = up;
      leg.limitBps = Math.max(leg.limitBps, this.layers[up]!.bps / UP_SWITCH_HEADROOM + 1);
      leg.probedAt = now;
      leg.nextProbeAt = now + leg.probeBackoffMs;
    }
    // A leg held below what it asked for by a limit tries the next layer up once its REMB
    // has not fallen for a while, if its REMB, now or at its peak, covers that layer's
    // bitrate: REMB cannot rise much above what the leg receives (libwebrtc caps it at
    // ~1.5x), so waiting for it to clear the switch's headroom would keep the leg low; a try
    // no REMB ever covered would overrun the link (layer-choice.ts, TRY_UP_COVER).
    if (choice >= 0 && choice === from && leg.limitBps >= 0 && leg.probedAt === 0 && now >= leg.nextProbeAt) {
      const up = ranked[rank(from) + 1];
      const allowed = chooseLayer(this.layers, from, leg.preference, -1);
      if (
        up !== undefined &&
        (estimateCovers(Math.max(leg.estimate(now), leg.peakBps), this.layers[up]!) ||
          leg.heldAtOrAbove(ranked, rank(up))) &&
        rank(allowed) > rank(from) &&
        now - leg.fellAt >= leg.probeBackoffMs
      ) {
        choice = up;
        leg.limitBps = Math.max(leg.limitBps, this.layers[up]!.bps / UP_SWITCH_HEADROOM + 1);
        leg.probedAt = now;
        leg.nextProbeAt = now + leg.probeBackoffMs;
      }
    }
    if (choice < 0) return;
    if (choice !== leg.target) {
      leg.target = choice;
      if (choice !== leg.current) this.ask(choice, now, true);
    } else if (leg.current !== leg.target) {
      this.ask(choice, now, fresh);
    }
  }

  /**
   * Runs the leg's prober (leg-prober.ts): it pads while the leg is on `from`, below a
   * layer its preference allows, held there by its REMB. True when the probe succeeded
   * (the REMB covers the next layer: the limit may already allow it, the probe counts).
   */
  private probe(
    leg: LegLayer,
    ranked: readonly number[],
    from: number,
    choice: number,
    now: number,
  ): boolean {
    const at = ranked.indexOf(from);
    const up = at >= 0 ? ranked[at + 1] : undefined;
    const upLayer = up === undefined ? undefined : this.layers[up];
    const v = this.probeInput;
    v.wantsUp =
      upLayer !== undefined &&
      upLayer.active &&
      choice >= 0 &&
      leg.current === from &&
      leg.limitBps >= 0 &&
      leg.probedAt === 0 &&
      ranked.indexOf(chooseLayer(this.layers, from, leg.preference, -1)) > at;
    v.currentBps = from >= 0 ? this.layers[from]!.bps : 0;
    v.upBps = upLayer?.bps ?? 0;
    v.estimate = leg.estimate(now);
    v.lossAvg = leg.lossAvg;
    v.fellAt = leg.fellAt;
    return leg.prober!.update(v, now) === 'succeeded' && v.wantsUp;
  }

  end(): void {
    for (const t of this.track.targets) t.layer?.prober?.stop();
    clearInterval(this.timer);
    this.onWanted = undefined;
    this.keyframes.close?.();
    const onEnd = this.onEnd;
    this.onEnd = undefined;
    onEnd?.();
    for (const h of this.histories) h.fill(undefined);
  }
}
