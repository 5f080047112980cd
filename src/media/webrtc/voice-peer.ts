import { randomInt } from 'node:crypto';
import type { Track } from 'node-datachannel';
import type { Logger } from 'pino';
import { chooseCodec } from './codec-policy.js';
import type { WebRtcSettings } from './peer-config.js';
import { PeerLeg } from './peer-leg.js';
import { isRtcp, rtpPayload } from './rtp.js';
import { keepOnlyCodec, rejectSection, writeSdp } from './sdp.js';
import { parseOffer } from './sdp-validation.js';
import { ChorusError } from '../../core/errors.js';
import { nodeDatachannel } from './node-datachannel.js';

/** Largest Opus packet sent (the RTP buffer is allocated once per peer). */
const MAX_PACKET = 1500;

/**
 * A voice-only peer: one Opus section, in which the server both receives the client's
 * microphone and sends what the client should hear (a mix made by the server), on one
 * SSRC with continuous sequence numbers and timestamps whoever is speaking.
 */
export class VoicePeer {
  readonly leg: PeerLeg;
  private track: Track | undefined;
  private open = false;
  private readonly ssrc = randomInt(1, 0xffffffff);
  private payloadType = 111;
  private seq = randomInt(0, 0x10000);
  private timestamp = randomInt(0, 0x100000000);
  private readonly rtp = Buffer.alloc(12 + MAX_PACKET);
  /** The client's Opus packets, as they arrive (a view: copy to keep). */
  onAudio: ((opus: Buffer) => void) | undefined;
  /** Packets sent and received, for stats. */
  sent = 0;
  received = 0;

  constructor(
    settings: WebRtcSettings,
    log: Logger,
    private readonly cname: string,
  ) {
    this.leg = new PeerLeg(settings, log);
  }

  get connected(): boolean {
    return this.leg.connected && !this.leg.closed;
  }

  /** Accepts an offer with an Opus audio section; resolves the complete answer. */
  async answer(offerSdp: string): Promise<string> {
    const offer = parseOffer(offerSdp);
    let chosen: { mid: string; direction: 'SendRecv' | 'SendOnly' | 'RecvOnly' } | undefined;
    for (const m of offer.media) {
      const codec =
        !chosen && m.kind === 'audio' && m.direction !== 'inactive'
          ? chooseCodec('audio', m.codecs)
          : undefined;
      if (!codec) {
        rejectSection(m);
        continue;
      }
      keepOnlyCodec(
        m,
        m.codecs.find((c) => c.payloadType === codec.payloadType)!,
      );
      this.payloadType = codec.payloadType;
      // Our direction mirrors the client's: it sends, we receive; it receives, we send.
      const direction =
        m.direction === 'sendrecv' ? 'SendRecv' : m.direction === 'sendonly' ? 'RecvOnly' : 'SendOnly';
      chosen = { mid: m.mid, direction };
    }
    if (!chosen)
      throw new ChorusError('invalid_sdp', 'the offer has no audio section with opus/48000', {
        reason: 'no_usable_codec',
      });
    const { mid, direction } = chosen;
    this.leg.prepareAnswer = () => this.addTrack(mid, direction);
    return this.leg.answer(writeSdp(offer));
  }

  /** A trickled candidate of the client (`candidate:...`, for the offer's audio mid). */
  addRemoteCandidate(candidate: string, mid: string): void {
    this.leg.pc.addRemoteCandidate(candidate.replace(/^a=/, ''), mid);
  }

  /** Sends one 20 ms Opus packet to the client; dropped until the track is open. */
  send(opus: Uint8Array): void {
    if (!this.open || !this.track || opus.length > MAX_PACKET) return;
    const b = this.rtp;
    b[0] = 0x80;
    b[1] = this.payloadType & 0x7f;
    b.writeUInt16BE(this.seq, 2);
    b.writeUInt32BE(this.timestamp >>> 0, 4);
    b.writeUInt32BE(this.ssrc, 8);
    b.set(opus, 12);
    this.seq = (this.seq + 1) & 0xffff;
    this.timestamp = (this.timestamp + 960) >>> 0;
    try {
      this.track.sendMessageBinary(b.subarray(0, 12 + opus.length));
      this.sent++;
    } catch {
      // The track closed under us: the leg's close handles the rest.
    }
  }

  close(reason: string): void {
    this.leg.close(reason);
  }

  private addTrack(mid: string, direction: 'SendRecv' | 'SendOnly' | 'RecvOnly'): void {
    const { Audio, RtcpReceivingSession, RtcpSrReporter, RtpPacketizationConfig } = nodeDatachannel();
    const audio = new Audio(mid, direction);
    audio.addOpusCodec(this.payloadType);
    if (direction !== 'RecvOnly') audio.addSSRC(this.ssrc, this.cname, this.cname, `${this.cname}-audio`);
    // Kept referenced for the peer's life: a collected wrapper closes the native track.
    const track = this.leg.pc.addTrack(audio);
    this.track = track;
    const receiving = new RtcpReceivingSession();
    if (direction !== 'RecvOnly') {
      const sr = new RtcpSrReporter(
        new RtpPacketizationConfig(this.ssrc, this.cname, this.payloadType, 48_000),
      );
      sr.addToChain(receiving);
      track.setMediaHandler(sr);
    } else {
      track.setMediaHandler(receiving);
    }
    track.onOpen(this.leg.guard('track.onOpen', () => (this.open = true)));
    track.onClosed(this.leg.guard('track.onClosed', () => (this.open = false)));
    track.onMessage(
      this.leg.guard('track.onMessage', (packet: Buffer) => {
        this.leg.lastHeard = Date.now();
        if (isRtcp(packet)) return;
        const payload = rtpPayload(packet);
        if (!payload || payload.length === 0) return;
        this.received++;
        this.onAudio?.(payload);
      }),
    );
  }
}
