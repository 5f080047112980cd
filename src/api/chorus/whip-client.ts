import { Audio, PeerConnection, RtcpReceivingSession, Video, type Track } from 'node-datachannel';
import { isRtcp } from '../../media/webrtc/rtp.js';

/** A refusal from a WHIP/WHEP endpoint: its status and body. */
export class WhipRefusal extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

/** How long the offer's POST, and then ICE + DTLS, may take (generous: loaded machines). */
const EXCHANGE_TIMEOUT_MS = 20_000;
const CONNECT_TIMEOUT_MS = 30_000;

function gathered(pc: PeerConnection): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ICE gathering did not complete')), 10_000);
    pc.onGatheringStateChange((s) => {
      if (s !== 'complete') return;
      clearTimeout(timer);
      resolve(pc.localDescription()!.sdp);
    });
    pc.setLocalDescription();
  });
}

function connected(pc: PeerConnection): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`still ${pc.state()} after ${CONNECT_TIMEOUT_MS} ms`)),
      CONNECT_TIMEOUT_MS,
    );
    pc.onStateChange((s) => {
      if (s === 'connected') {
        clearTimeout(timer);
        resolve();
      } else if (s === 'failed' || s === 'closed') {
        clearTimeout(timer);
        reject(new Error(`the connection ${s}`));
      }
    });
  });
}

/**
 * One node-datachannel WHIP or WHEP session, client side: the offer is POSTed whole
 * (non-trickle: gathered first), the answer applied, and the session resource kept for
 * DELETE. Used by `chorus load-test` and the tests.
 */
abstract class WhipSessionClient {
  readonly pc: PeerConnection;
  /** The session resource (absolute URL), from the answer's Location. */
  location = '';
  /** Milliseconds from the POST to a connected peer. */
  joinMs = 0;

  constructor(name: string) {
    this.pc = new PeerConnection(name, { iceServers: [], bindAddress: '127.0.0.1' });
  }

  protected async exchange(endpoint: string, token: string): Promise<void> {
    const t0 = performance.now();
    const offer = await gathered(this.pc);
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
      body: offer,
      signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS),
    });
    const body = await res.text();
    if (res.status !== 201) throw new WhipRefusal(res.status, body);
    this.location = new URL(res.headers.get('location') ?? '', endpoint).href;
    const up = connected(this.pc);
    this.pc.setRemoteDescription(body, 'answer');
    await up;
    this.joinMs = performance.now() - t0;
  }

  /** Ends the session on the server (`DELETE` on its resource); the status. */
  async delete(token: string): Promise<number> {
    const res = await fetch(this.location, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS),
    });
    await res.arrayBuffer();
    return res.status;
  }

  close(): void {
    this.pc.close();
  }
}

const VIDEO_PT = 96;
const AUDIO_PT = 111;
const VIDEO_SSRC = 0x11110000;
const AUDIO_SSRC = 0x22220000;
const AUDIO_PACKETS_PER_SECOND = 50;
const AUDIO_PAYLOAD_BYTES = 160;
const VIDEO_PAYLOAD_BYTES = 1100;

/**
 * A WHIP publisher sending fake VP8 and Opus RTP (not decodable media: the SFU forwards
 * RTP without decoding it) at a set bitrate, paced on elapsed time so the rate holds.
 */
export class WhipPublisher extends WhipSessionClient {
  readonly video: Track;
  readonly audio: Track;
  sent = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(name = 'whip-publisher') {
    super(name);
    const v = new Video('video', 'SendOnly');
    v.addVideoCodec(VIDEO_PT, 'VP8');
    v.addSSRC(VIDEO_SSRC, name, name, `${name}-video`);
    this.video = this.pc.addTrack(v);
    const a = new Audio('audio', 'SendOnly');
    a.addOpusCodec(AUDIO_PT);
    a.addSSRC(AUDIO_SSRC, name, name, `${name}-audio`);
    this.audio = this.pc.addTrack(a);
    // RTCP from the SFU (PLI, RR) is read and dropped.
    this.video.onMessage(() => undefined);
    this.audio.onMessage(() => undefined);
  }

  /** POSTs the offer to `endpoint` (…/whip/{room}) and waits until connected. */
  publish(endpoint: string, token: string): Promise<void> {
    return this.exchange(endpoint, token);
  }

  /** Sends video at `videoKbps` (1,100-byte packets) and 50 audio packets a second. */
  start(videoKbps: number): void {
    const videoPps = (videoKbps * 1000) / 8 / (VIDEO_PAYLOAD_BYTES + 12);
    const video = Buffer.alloc(12 + VIDEO_PAYLOAD_BYTES, 0x5a);
    video[0] = 0x80;
    video[1] = VIDEO_PT;
    video.writeUInt32BE(VIDEO_SSRC, 8);
    const audio = Buffer.alloc(12 + AUDIO_PAYLOAD_BYTES, 0x33);
    audio[0] = 0x80;
    audio[1] = AUDIO_PT;
    audio.writeUInt32BE(AUDIO_SSRC, 8);
    let v = 0;
    let a = 0;
    const t0 = performance.now();
    this.timer = setInterval(() => {
      const s = (performance.now() - t0) / 1000;
      if (!this.video.isOpen() || !this.audio.isOpen()) return;
      while (v < s * videoPps) {
        video.writeUInt16BE(v & 0xffff, 2);
        // 90 kHz clock, timestamps following the send schedule (what jitter is measured on).
        video.writeUInt32BE(Math.round((v / videoPps) * 90_000) >>> 0, 4);
        this.video.sendMessageBinary(video);
        v++;
      }
      while (a < s * AUDIO_PACKETS_PER_SECOND) {
        audio.writeUInt16BE(a & 0xffff, 2);
        audio.writeUInt32BE((a * 960) >>> 0, 4);
        this.audio.sendMessageBinary(audio);
        a++;
      }
      this.sent = v + a;
    }, 5);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  override close(): void {
    this.stop();
    super.close();
  }
}

/** What one receiving track has seen: RFC 3550 loss (by sequence numbers) and jitter. */
export class ReceivedStream {
  packets = 0;
  bytes = 0;
  firstAt = 0;
  lastAt = 0;
  private baseSeq = -1;
  private maxSeq = 0;
  private cycles = 0;
  private transit = 0;
  /** Interarrival jitter in RTP timestamp units (RFC 3550 A.8). */
  private jitterUnits = 0;

  constructor(private readonly clockRate: number) {}

  add(packet: Buffer, now: number): void {
    if (packet.length < 12 || isRtcp(packet)) return;
    const seq = packet.readUInt16BE(2);
    const ts = packet.readUInt32BE(4);
    if (this.baseSeq < 0) {
      this.baseSeq = seq;
      this.maxSeq = seq;
      this.firstAt = now;
    } else {
      const delta = (seq - this.maxSeq) & 0xffff;
      if (delta > 0 && delta < 0x8000) {
        if (seq < this.maxSeq) this.cycles += 0x10000;
        this.maxSeq = seq;
      }
    }
    const arrival = (now * this.clockRate) / 1000;
    const transit = arrival - ts;
    if (this.packets > 0) {
      let d = transit - this.transit;
      // A timestamp that wrapped since the last packet, not a jump of hours.
      if (d > 2 ** 31) d -= 2 ** 32;
      if (d < -(2 ** 31)) d += 2 ** 32;
      this.jitterUnits += (Math.abs(d) - this.jitterUnits) / 16;
    }
    this.transit = transit;
    this.packets++;
    this.bytes += packet.length;
    this.lastAt = now;
  }

  /** Packets expected from the first to the highest sequence number seen. */
  get expected(): number {
    return this.baseSeq < 0 ? 0 : this.cycles + this.maxSeq - this.baseSeq + 1;
  }

  get lost(): number {
    return Math.max(0, this.expected - this.packets);
  }

  get jitterMs(): number {
    return (this.jitterUnits / this.clockRate) * 1000;
  }
}

/**
 * A WHEP viewer: one receiving video (VP8) and one audio (Opus) section, each answered
 * with receiver reports (which is also how the SFU knows the viewer is alive).
 */
export class WhepViewer extends WhipSessionClient {
  readonly video = new ReceivedStream(90_000);
  readonly audio = new ReceivedStream(48_000);
  private readonly tracks: Track[] = [];

  constructor(name = 'whep-viewer') {
    super(name);
    const v = new Video('video', 'RecvOnly');
    v.addVideoCodec(VIDEO_PT, 'VP8');
    const a = new Audio('audio', 'RecvOnly');
    a.addOpusCodec(AUDIO_PT);
    for (const [media, stream] of [
      [v, this.video],
      [a, this.audio],
    ] as const) {
      const track = this.pc.addTrack(media);
      track.setMediaHandler(new RtcpReceivingSession());
      track.onMessage((m) => stream.add(m, performance.now()));
      this.tracks.push(track);
    }
  }

  /** POSTs the offer to `endpoint` (…/whep/{room}/{identity}) and waits until connected. */
  view(endpoint: string, token: string): Promise<void> {
    return this.exchange(endpoint, token);
  }

  get packets(): number {
    return this.video.packets + this.audio.packets;
  }
}
