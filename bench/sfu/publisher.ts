// A bench worker: one node-datachannel publisher sending fake VP8 and Opus RTP at a
// fixed rate (default ~1.8 Mbit/s: 200 video packets of 1,100 bytes and 50 audio packets
// of 160 bytes a second). Paced on elapsed time, not on timer ticks, so the rate holds.
// Each video packet carries its send time (a float64 after the RTP header).
// With a frame rate (5th argument, e.g. 30), video goes as frames: each frame's packets
// sent together, as a camera's encoder hands a frame over (0: packets spread evenly, one
// per 5 ms tick at 200/s, the earlier figures' pacing, as a sender's pacer spreads them).
// Either way the last packet of each frame (30 a second when no rate is given) carries the
// RTP marker bit, as a real encoder's does: the subscribers measure latency on it (when a
// frame is complete), and the relay between nodes sends a frame's packets together.
import { Audio, type PeerConnection, type Track, Video } from 'node-datachannel';
import { NdcClient } from '../../test/fixtures/ndc-peer.js';

const [, , base, room, user, videoPpsText, fpsText, retransmission = 'as-is'] = process.argv;
const VIDEO_PPS = Number(videoPpsText ?? 200);
const FPS = Number(fpsText ?? 0);
const AUDIO_PPS = 50;

class BenchPublisher extends NdcClient {
  video!: Track;
  audio!: Track;
  protected addTracks(pc: PeerConnection): void {
    const v = new Video('video', 'SendOnly');
    v.addVideoCodec(96, 'VP8');
    // --rtx-compare (run.ts): 'rtx' offers RTX as a browser does; 'plain' offers no NACK either.
    if (retransmission === 'rtx') v.addRTXCodec(97, 96, 90000);
    v.addSSRC(1111, 'bench', 'bench', 'benchvideo');
    this.video = pc.addTrack(v);
    const a = new Audio('audio', 'SendOnly');
    a.addOpusCodec(111);
    a.addSSRC(2222, 'bench', 'bench', 'benchaudio');
    this.audio = pc.addTrack(a);
    // RTCP from the SFU (PLI, RR) is read and dropped.
    this.video.onMessage(() => undefined);
    this.audio.onMessage(() => undefined);
  }
  publish(): Promise<unknown> {
    return this.connect(
      base!,
      `/webrtc/sdp/m/${room}/c/${user}/p/${user}/s/true`,
      (s) => (retransmission === 'plain' ? s.replace(/^a=rtcp-fb:96 nack\r?\n/gm, '') : s),
      (s) => s,
    );
  }
}

const pub = new BenchPublisher('bench-publisher');
const r = (await pub.publish()) as { status: number };
if (r.status !== 200) throw new Error(`publish refused: ${r.status}`);

const video = Buffer.alloc(1100, 0x5a);
video[0] = 0x80;
video[1] = 96;
video.writeUInt32BE(1111, 8);
const audio = Buffer.alloc(160, 0x33);
audio[0] = 0x80;
audio[1] = 111;
audio.writeUInt32BE(2222, 8);
let vSent = 0;
let aSent = 0;
/** Packets per frame, for the marker bit: frames at FPS, or 30 a second when paced evenly. */
const PER_FRAME = VIDEO_PPS / (FPS > 0 ? FPS : 30);
const t0 = performance.now();
setInterval(() => {
  const s = (performance.now() - t0) / 1000;
  // With frames: up to the end of the current frame, i.e. a frame's packets at once.
  const videoDue = FPS > 0 ? (Math.floor(s * FPS) + 1) * (VIDEO_PPS / FPS) : s * VIDEO_PPS;
  while (vSent < videoDue) {
    video.writeUInt16BE(vSent & 0xffff, 2);
    // Marker on a frame's last packet: the next one belongs to the next frame.
    video[1] = Math.floor((vSent + 1) / PER_FRAME) !== Math.floor(vSent / PER_FRAME) ? 0x80 | 96 : 96;
    video.writeUInt32BE(vSent * 450, 4);
    // When it was sent (this machine's clock), for the subscribers' latency probes.
    video.writeDoubleBE(performance.timeOrigin + performance.now(), 12);
    pub.video.sendMessageBinary(video);
    vSent++;
  }
  while (aSent < s * AUDIO_PPS) {
    audio.writeUInt16BE(aSent & 0xffff, 2);
    audio.writeUInt32BE(aSent * 960, 4);
    pub.audio.sendMessageBinary(audio);
    aSent++;
  }
}, 5);
process.send!({ type: 'ready' });
process.on('message', (m: { type: string }) => {
  if (m.type === 'report') process.send!({ type: 'report', sent: vSent + aSent });
  if (m.type === 'exit') {
    pub.close();
    process.exit(0);
  }
});
