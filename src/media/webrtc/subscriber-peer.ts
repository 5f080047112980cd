import type { Track } from 'node-datachannel';
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { chooseCodec, describeCodec } from './codec-policy.js';
import type { WebRtcSettings } from './peer-config.js';
import { PeerLeg } from './peer-leg.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import type { ForwardTarget, PublishedTrack } from './published-track.js';
import { findReceptionReport, forEachNackedSeq, isRtcp, wantsKeyframe } from './rtp.js';
import { keepOnlyCodec, rejectSection, writeSdp, type MediaSection } from './sdp.js';
import { parseOffer } from './sdp-validation.js';
import { readFeatures } from './section-features.js';
import { ChorusError } from '../../core/errors.js';
import { LegLayer } from './leg-layer.js';
import { LegProber } from './leg-prober.js';
import type { PaddingSender } from './padding-sender.js';
import { readRemb } from './rtp.js';
import { nodeDatachannel } from './node-datachannel.js';

/**
 * Retransmissions one leg may get a second. A NACK names up to 17 packets and costs the
 * subscriber a few bytes; without a ceiling a client could make the SFU send its whole
 * history again and again. 400/s is twice the packet rate of a 2 Mbit/s video; the burst
 * is one second's worth, so a loss burst is answered at once and a flood gets the rate.
 */
const MAX_RETRANSMITS_PER_SECOND = 400;

interface Assignment {
  section: MediaSection;
  source: PublishedTrack;
  payloadType: number;
  /** The subscriber's RTX payload type for the codec, when it offered one (#18). */
  rtxPayloadType: number | undefined;
  /** The subscriber's Opus RED payload type, when it offered RED and the publisher sends it. */
  redPayloadType: number | undefined;
}

/**
 * A peer that receives one publisher's tracks. Each receiving section of its offer is
 * matched to a published track of the same kind and codec; the answer sends that track
 * with the SFU's SSRC, the subscriber's payload type and sender reports; NACKs are
 * answered from the published track's shared history.
 */
export class SubscriberPeer {
  readonly leg: PeerLeg;
  readonly targets: Array<{ source: PublishedTrack; target: ForwardTarget }> = [];
  private readonly retransmits = new TokenBucket(MAX_RETRANSMITS_PER_SECOND, MAX_RETRANSMITS_PER_SECOND);
  /** The arrival time of the RTCP packet being handled: read once per packet, not per NACKed seq. */
  private rtcpNow = 0;

  constructor(
    settings: WebRtcSettings,
    log: Logger,
    private readonly streamId: string,
    /** The receiving user. */
    private readonly user: string,
    /** Where probe padding goes (#18); absent: the legs never probe. */
    private readonly padding?: PaddingSender,
  ) {
    this.leg = new PeerLeg(settings, log);
    // No onTrack handler here, on purpose: node-datachannel would wrap each of the offer's
    // receiving sections in a JS Track, and a wrapper that is garbage-collected closes its
    // native track, which is the very track addTrack (by mid) sends on below.
    this.leg.onClose(() => {
      for (const { source, target } of this.targets) {
        target.open = false;
        source.removeTarget(target);
      }
    });
  }

  /** The msid track ids this leg's answer gives its sections. */
  private readonly msids = new Set<string>();

  async answer(offerSdp: string, sources: readonly PublishedTrack[]): Promise<string> {
    const offer = parseOffer(offerSdp);
    const free = sources.filter((s) => !s.closed);
    const assignments: Assignment[] = [];
    for (const m of offer.media) {
      const receives = m.direction === 'recvonly' || m.direction === 'sendrecv';
      const idx = receives
        ? free.findIndex((s) => s.kind === m.kind && chooseCodec(m.kind, m.codecs, s.codec))
        : -1;
      if (idx < 0) {
        rejectSection(m);
        continue;
      }
      const source = free.splice(idx, 1)[0]!;
      const codec = chooseCodec(m.kind, m.codecs, source.codec)!;
      // Retransmissions go as RTX to a subscriber that offers it for the codec (video);
      // RED as RED to one that offers it, when the publisher sends RED (else the primary).
      const features = readFeatures(m, codec.payloadType);
      const rtx = m.kind === 'video' ? features.rtxPayloadType : undefined;
      const red = source.redPayloadType === undefined ? undefined : features.redPayloadType;
      keepOnlyCodec(
        m,
        m.codecs.find((c) => c.payloadType === codec.payloadType)!,
        {
          payloadTypes: [rtx, red].filter((pt) => pt !== undefined),
        },
      );
      assignments.push({
        section: m,
        source,
        payloadType: codec.payloadType,
        rtxPayloadType: rtx,
        redPayloadType: red,
      });
    }
    // A video section that could not take the publisher's video: say which codec it lacks
    // rather than answer without the picture.
    const undecodable = free.find((s) => s.kind === 'video');
    const wantsVideo = offer.media.some(
      (m) =>
        m.kind === 'video' &&
        (m.direction === 'recvonly' || m.direction === 'sendrecv') &&
        m.codecs.length === 0,
    );
    if (undecodable && wantsVideo) {
      throw new ChorusError(
        'invalid_sdp',
        `this room's video codec is ${describeCodec(undecodable.codec)}; the offer cannot receive it`,
        { reason: 'codec_not_supported' },
      );
    }
    if (assignments.length === 0) {
      // The publisher is there: it is the offer that asks for nothing it sends.
      throw new ChorusError(
        'invalid_sdp',
        'no receiving section of the offer matches a published track (kind and codec)',
      );
    }
    this.leg.prepareAnswer = () => {
      for (const a of assignments) this.addSendTrack(a);
    };
    return this.leg.answer(writeSdp(offer));
  }

  private addSendTrack(a: Assignment): void {
    const { section, source, payloadType } = a;
    const { Audio, Video, RtcpSrReporter, RtpPacketizationConfig } = nodeDatachannel();
    const cname = `chorus-${this.streamId}`;
    // One msid per section: a second track of a kind (a participant's screen next to its
    // camera) takes its mid too, as browsers refuse an answer with duplicate msids.
    let trackId = `${this.streamId}-${source.kind}`;
    if (this.msids.has(trackId)) trackId = `${trackId}-${section.mid}`;
    this.msids.add(trackId);
    let track: Track;
    if (source.kind === 'video') {
      const v = new Video(section.mid, 'SendOnly');
      if (source.codec.fmtp) v.addVideoCodec(payloadType, source.codec.name, source.codec.fmtp);
      else v.addVideoCodec(payloadType, source.codec.name);
      v.addSSRC(source.outSsrc, cname, this.streamId, trackId);
      if (a.rtxPayloadType !== undefined) {
        v.addRTXCodec(a.rtxPayloadType, payloadType, source.codec.clockRate);
        v.addSSRC(source.rtxSsrc, cname, this.streamId, trackId);
        v.parseSdpLine(`a=ssrc-group:FID ${source.outSsrc} ${source.rtxSsrc}`);
      }
      track = this.leg.pc.addTrack(v);
    } else {
      const au = new Audio(section.mid, 'SendOnly');
      if (source.codec.fmtp) au.addOpusCodec(payloadType, source.codec.fmtp);
      else au.addOpusCodec(payloadType);
      if (a.redPayloadType !== undefined)
        au.addAudioCodec(a.redPayloadType, 'red/48000/2', `${payloadType}/${payloadType}`);
      au.addSSRC(source.outSsrc, cname, this.streamId, trackId);
      track = this.leg.pc.addTrack(au);
    }
    const sr = new RtcpSrReporter(
      new RtpPacketizationConfig(source.outSsrc, cname, payloadType, source.codec.clockRate),
    );
    track.setMediaHandler(sr);
    const target: ForwardTarget = {
      track,
      payloadType,
      open: false,
      subscriber: this.user,
      report: { fractionLost: 0, cumulativeLost: 0, jitter: 0, at: 0 },
      // Which simulcast layer the leg receives (idle when the track has one encoding).
      ...(source.kind === 'video' ? { layer: new LegLayer(source.codec.clockRate) } : {}),
      ...(a.rtxPayloadType === undefined
        ? {}
        : { rtx: { payloadType: a.rtxPayloadType, seq: randomInt(0, 0x10000) } }),
      ...(a.redPayloadType === undefined ? {} : { red: a.redPayloadType }),
    };
    this.targets.push({ source, target });
    if (target.layer !== undefined && target.rtx !== undefined && this.padding !== undefined) {
      // Probing pads on the RTX SSRC only: padding on the media SSRC would take sequence
      // numbers the munger does not know of.
      const prober = (target.layer.prober = new LegProber(this.padding.forLeg(target, source.rtxSsrc)));
      this.leg.onClose(() => prober.stop());
    }
    // Made once per leg, not per RTCP packet.
    const resend = (seq: number): void => {
      if (this.retransmits.take(this.rtcpNow)) source.resend(seq, target);
    };
    track.onMessage(
      this.leg.guard('track.onMessage', (packet: Buffer) => {
        const now = Date.now();
        this.leg.lastHeard = now;
        // What comes back on a sending track is RTCP: PLI/FIR become a keyframe request,
        // NACKs are answered from the published track's history.
        if (!isRtcp(packet)) return;
        if (findReceptionReport(packet, source.outSsrc, target.report)) {
          target.report.at = now;
          target.layer?.onReport(target.report.fractionLost, now);
        }
        if (wantsKeyframe(packet)) source.requestKeyframe();
        if (target.layer !== undefined) {
          const remb = readRemb(packet);
          if (remb >= 0) target.layer.onEstimate(remb, now);
        }
        this.rtcpNow = now;
        forEachNackedSeq(packet, source.outSsrc, resend);
      }),
    );
    track.onOpen(
      this.leg.guard('track.onOpen', () => {
        target.open = true;
        source.addTarget(target);
        // A new subscriber needs a keyframe to start decoding: ask at once.
        source.requestKeyframe(true);
      }),
    );
  }
}
