import { randomInt } from 'node:crypto';
import type { Track } from 'node-datachannel';
import type { Logger } from 'pino';
import { chooseCodec, type CodecChoice } from './codec-policy.js';
import type { WebRtcSettings } from './peer-config.js';
import { PeerLeg } from './peer-leg.js';
import { PublishedTrack } from './published-track.js';
import { isRtcp } from './rtp.js';
import { keepOnlyCodec, rejectSection, writeSdp } from './sdp.js';
import { parseOffer } from './sdp-validation.js';
import { nodeDatachannel } from './node-datachannel.js';
import { ChorusError } from '../../core/errors.js';

/**
 * A peer that sends media into the SFU. Its offer is filtered to the codecs Chorus
 * forwards before libdatachannel sees it, so the answer cannot accept anything else.
 */
export class PublisherPeer {
  readonly leg: PeerLeg;
  readonly tracks: PublishedTrack[] = [];
  /** Resolved once per mid: the codec chosen for it. */
  private readonly chosen = new Map<string, CodecChoice>();
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
        if (!codec) return;
        const published = new PublishedTrack(
          codec.kind,
          codec,
          randomInt(1, 0xffffffff),
          track,
          settings.keyframeIntervalMs,
          settings.nackHistoryPackets,
        );
        // Receiver reports and REMB to the publisher; keyframe requests go through it.
        track.setMediaHandler(new (nodeDatachannel().RtcpReceivingSession)());
        track.onMessage(
          this.leg.guard('track.onMessage', (packet: Buffer) => {
            this.leg.lastHeard = Date.now();
            if (!isRtcp(packet)) published.forward(packet);
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

  /** Filters the offer to one forwardable codec per sending section; returns the answer. */
  async answer(offerSdp: string): Promise<{ answer: string; kinds: Array<'audio' | 'video'> }> {
    const offer = parseOffer(offerSdp);
    const kinds: Array<'audio' | 'video'> = [];
    for (const m of offer.media) {
      const sends = m.direction === 'sendonly' || m.direction === 'sendrecv';
      const codec = sends ? chooseCodec(m.kind, m.codecs) : undefined;
      if (!codec) {
        rejectSection(m);
        continue;
      }
      keepOnlyCodec(m, { ...m.codecs.find((c) => c.payloadType === codec.payloadType)! });
      this.chosen.set(m.mid, codec);
      kinds.push(codec.kind);
    }
    if (kinds.length === 0) {
      throw new ChorusError(
        'invalid_sdp',
        'the offer sends nothing Chorus forwards: audio must offer opus/48000, video VP8 or H.264 constrained baseline',
        { reason: 'no_usable_codec' },
      );
    }
    return { answer: await this.leg.answer(writeSdp(offer)), kinds };
  }
}
