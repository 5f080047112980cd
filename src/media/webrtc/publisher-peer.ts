import { randomInt } from 'node:crypto';
import type { Track } from 'node-datachannel';
import type { Logger } from 'pino';
import { chooseCodec, describeCodec, type CodecChoice, type VideoCodecName } from './codec-policy.js';
import type { WebRtcSettings } from './peer-config.js';
import { PeerLeg } from './peer-leg.js';
import { PublishedTrack } from './published-track.js';
import { InboundTrack } from './inbound-track.js';
import { AudioLevelMeter } from './audio-level.js';
import { keptFor, readFeatures, type SectionFeatures } from './section-features.js';
import { keepOnlyCodec, rejectSection, writeSdp } from './sdp.js';
import { parseOffer } from './sdp-validation.js';
import { ChorusError } from '../../core/errors.js';
import {
  answerSimulcast,
  keepSimulcast,
  readSimulcast,
  routable,
  type SimulcastOffer,
} from './simulcast-sdp.js';
import { PublisherLayerFeedback, simulcastKeying } from './simulcast-publisher.js';
import { SimulcastTrack } from './simulcast-track.js';

/**
 * A peer that sends media into the SFU. Its offer is filtered to the codecs Chorus
 * forwards before libdatachannel sees it, so the answer cannot accept anything else.
 */
export class PublisherPeer {
  readonly leg: PeerLeg;
  readonly tracks: PublishedTrack[] = [];
  /** Resolved once per mid: the codec chosen for it. */
  private readonly chosen = new Map<string, CodecChoice>();
  /** Per mid: RTX, NACK, audio level as negotiated (#18). */
  private readonly features = new Map<string, SectionFeatures>();
  /** Per mid: the simulcast layers the section sends, when it does. */
  private readonly simulcast = new Map<string, SimulcastOffer>();
  private readonly onTrackHandlers: Array<(t: PublishedTrack) => void> = [];
  private readonly wrappers: Track[] = [];

  constructor(settings: WebRtcSettings, log: Logger) {
    this.leg = new PeerLeg(settings, log);
    this.leg.pc.onTrack(
      this.leg.guard('onTrack', (track: Track) => {
        // Every Track wrapper node-datachannel hands over must stay referenced while its
        // peer lives: when one is garbage-collected it closes the native track.
        this.wrappers.push(track);
        const codec = this.chosen.get(track.mid());
        const features = this.features.get(track.mid());
        if (!codec || !features) return;
        // Receiver reports, NACKs, RTX and keyframe requests: no media handler (inbound-track.ts).
        const inbound = new InboundTrack(track, {
          clockRate: codec.clockRate,
          payloadType: codec.payloadType,
          rtxPayloadType: features.rtxPayloadType,
          nack: features.nack && codec.kind === 'video',
        });
        const published = new PublishedTrack(
          codec.kind,
          codec,
          randomInt(1, 0xffffffff),
          inbound,
          settings.keyframeIntervalMs,
          settings.nackHistoryPackets,
        );
        if (features.audioLevelId !== undefined)
          published.audioLevel = new AudioLevelMeter(features.audioLevelId);
        published.redPayloadType = features.redPayloadType;
        inbound.counters = published;
        const layers = this.simulcast.get(track.mid());
        if (layers) {
          const feedback = new PublisherLayerFeedback(track, inbound.ssrc);
          published.simulcast = feedback.layers = new SimulcastTrack(
            published,
            simulcastKeying(layers),
            feedback,
            settings.nackHistoryPackets,
          );
        }
        track.onMessage(
          this.leg.guard('track.onMessage', (packet: Buffer) => {
            const now = Date.now();
            this.leg.lastHeard = now;
            const p = inbound.receive(packet, now);
            if (p !== undefined) published.forward(p);
          }),
        );
        this.tracks.push(published);
        for (const fn of this.onTrackHandlers) fn(published);
      }),
    );
    this.leg.onClose(() => {
      for (const t of this.tracks) t.end();
    });
  }

  onTrack(fn: (t: PublishedTrack) => void): void {
    this.onTrackHandlers.push(fn);
  }

  /** The video codec this peer's answer settled on (once answered), for the room's choice. */
  get videoCodec(): CodecChoice | undefined {
    for (const c of this.chosen.values()) if (c.kind === 'video') return c;
    return undefined;
  }

  /**
   * Filters the offer to one forwardable codec per sending section; returns the answer.
   * Video: `roomVideo` when the room has a codec already (an offer without it is refused:
   * the room's subscribers decode one codec), else the first of the server's preference.
   */
  async answer(
    offerSdp: string,
    roomVideo?: CodecChoice,
    preference?: readonly VideoCodecName[],
  ): Promise<{ answer: string; kinds: Array<'audio' | 'video'> }> {
    const offer = parseOffer(offerSdp);
    const kinds: Array<'audio' | 'video'> = [];
    let video = roomVideo;
    for (const m of offer.media) {
      const sends = m.direction === 'sendonly' || m.direction === 'sendrecv';
      const codec = sends
        ? chooseCodec(m.kind, m.codecs, m.kind === 'video' ? video : undefined, preference)
        : undefined;
      if (sends && !codec && m.kind === 'video' && roomVideo) {
        throw new ChorusError(
          'invalid_sdp',
          `this room's video codec is ${describeCodec(roomVideo)}, chosen with its first publisher; the offer does not send it`,
          { reason: 'room_codec_not_offered' },
        );
      }
      if (codec?.kind === 'video') video = codec;
      if (!codec) {
        rejectSection(m);
        continue;
      }
      const simulcast = codec.kind === 'video' ? readSimulcast(m) : undefined;
      const features = readFeatures(m, codec.payloadType);
      // Each layer would have its RTX stream, and the inbound track repairs one stream.
      if (simulcast) features.rtxPayloadType = undefined;
      keepOnlyCodec(m, { ...m.codecs.find((c) => c.payloadType === codec.payloadType)! }, keptFor(features));
      if (simulcast) {
        keepSimulcast(m, simulcast);
        this.simulcast.set(m.mid, simulcast);
      }
      this.features.set(m.mid, features);
      this.chosen.set(m.mid, codec);
      kinds.push(codec.kind);
    }
    if (kinds.length === 0) {
      throw new ChorusError(
        'invalid_sdp',
        "the offer sends nothing Chorus forwards: audio must offer opus/48000, video one of the server's video codecs (VP8, VP9, H.264, AV1 by default)",
        { reason: 'no_usable_codec' },
      );
    }
    for (const s of this.simulcast.values()) {
      if (routable(s, kinds.length)) continue;
      // Refused rather than answered: its video would never arrive (simulcast-sdp.ts).
      throw new ChorusError(
        'invalid_sdp',
        'rid simulcast without a=ssrc lines needs the video alone on its peer connection (send audio on another one), or SSRC simulcast',
        { reason: 'simulcast_needs_own_connection' },
      );
    }
    return { answer: answerSimulcast(await this.leg.answer(writeSdp(offer)), this.simulcast), kinds };
  }
}
