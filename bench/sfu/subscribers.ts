// A bench worker: holds N node-datachannel subscribers to one publisher. Each counts the
// packets it gets and, from RTP sequence numbers, the packets it should have got; it
// answers sender reports with receiver reports as a browser does. Probes keep each video
// frame's latency (the publisher's send time in the frame's last packet) until the next report.
import { Audio, type PeerConnection, RtcpReceivingSession, type Track, Video } from 'node-datachannel';
import { NdcClient } from '../../test/fixtures/ndc-peer.js';
import { isRtcp } from '../../src/media/webrtc/rtp.js';

const [, , base, room, publisher, countText, prefix, probesText, retransmission = 'as-is'] = process.argv;
const count = Number(countText);
/**
 * Only this many subscribers count packets in JS. The others receive and decrypt in
 * libdatachannel but make no per-packet call into JS: on a 2-core box, N JS callbacks per
 * packet would cost the clients more CPU than the server and starve it. The server sends
 * the same to every subscriber, so the probes' loss stands for all of them.
 */
const probes = Number(probesText ?? count);

/** Received and expected packets on one stream, with 16-bit sequence numbers unwrapped. */
class SeqCounter {
  received = 0;
  private first = -1;
  private highest = -1;
  add(seq: number): void {
    this.received++;
    if (this.first < 0) {
      this.first = this.highest = seq;
      return;
    }
    // Unwrap against the highest seen: the candidate closest to it.
    const cycle = this.highest & ~0xffff;
    let ext = cycle | seq;
    if (ext - this.highest > 0x8000) ext -= 0x10000;
    else if (this.highest - ext > 0x8000) ext += 0x10000;
    if (ext > this.highest) this.highest = ext;
  }
  get expected(): number {
    return this.first < 0 ? 0 : this.highest - this.first + 1;
  }
}

let made = 0;
/**
 * Probes' video frame latency (the send time in a frame's last packet, the one with the
 * marker bit, to its arrival: when the frame can be decoded), since the last report.
 */
const latencies: number[] = [];
const MAX_SAMPLES = 200_000;

class BenchSubscriber extends NdcClient {
  readonly probe = made++ < probes;
  video!: Track;
  // Held: node-datachannel closes a track whose JS wrapper is garbage-collected.
  audio!: Track;
  readonly counters = [new SeqCounter(), new SeqCounter()];
  lastReport = -1;
  protected addTracks(pc: PeerConnection): void {
    const v = new Video('v0', 'RecvOnly');
    v.addVideoCodec(96, 'VP8');
    // --rtx-compare (run.ts): retransmissions come as RTX to a subscriber that offers it.
    if (retransmission === 'rtx') v.addRTXCodec(97, 96, 90000);
    this.video = pc.addTrack(v);
    const a = new Audio('a0', 'RecvOnly');
    a.addOpusCodec(111);
    const audio = (this.audio = pc.addTrack(a));
    // As a browser does: a receiver report answers each of the SFU's sender reports, with a
    // report block for the stream (the SFU routes RTCP by that SSRC, and its silence
    // watchdog closes a leg that sends none).
    this.video.setMediaHandler(new RtcpReceivingSession());
    audio.setMediaHandler(new RtcpReceivingSession());
    const [vc, ac] = this.counters as [SeqCounter, SeqCounter];
    if (!this.probe) return;
    // RTCP (the SFU's sender reports) shares the track.
    this.video.onMessage((m) => {
      if (isRtcp(m)) return;
      vc.add(m.readUInt16BE(2));
      if (latencies.length < MAX_SAMPLES && m.length >= 20 && (m[1]! & 0x80) !== 0)
        latencies.push(performance.timeOrigin + performance.now() - m.readDoubleBE(12));
    });
    audio.onMessage((m) => {
      if (!isRtcp(m)) ac.add(m.readUInt16BE(2));
    });
  }
  subscribe(user: string): Promise<{ status: number }> {
    return this.connect(
      base!,
      `/webrtc/sdp/m/${room}/c/${user}/p/${publisher}/s/false`,
      (s) => s,
      (s) => s,
    );
  }
}

const subs: BenchSubscriber[] = [];
let failed = 0;
for (let i = 0; i < count; i += 10) {
  await Promise.all(
    Array.from({ length: Math.min(10, count - i) }, async (_, j) => {
      const s = new BenchSubscriber('bench-subscriber');
      try {
        const r = await s.subscribe(`${prefix}-${i + j}`);
        if (r.status === 200) subs.push(s);
        else failed++;
      } catch {
        failed++;
      }
    }),
  );
}
process.send!({ type: 'ready', connected: subs.length, failed, probes: subs.filter((s) => s.probe).length });
process.on('message', (m: { type: string }) => {
  if (m.type === 'report') {
    let received = 0;
    let expected = 0;
    let worstLoss = 0;
    let starved = 0;
    for (const s of subs) {
      if (!s.probe) continue;
      let r = 0;
      let e = 0;
      for (const c of s.counters) {
        r += c.received;
        e += c.expected;
      }
      received += r;
      expected += e;
      if (e > 0) worstLoss = Math.max(worstLoss, 1 - r / e);
      // A subscriber that got nothing since the last report shows no sequence gap at all.
      if (r === s.lastReport) starved++;
      s.lastReport = r;
    }
    const sorted = latencies.splice(0).sort((a, b) => a - b);
    const at = (p: number): number =>
      sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
    process.send!({ type: 'report', received, expected, worstLoss, starved, p50: at(0.5), p99: at(0.99) });
  }
  if (m.type === 'exit') {
    for (const s of subs) s.close();
    process.exit(0);
  }
});
