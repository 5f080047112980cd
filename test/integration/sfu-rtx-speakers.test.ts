import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { createBlueskyRoom } from '../fixtures/bluesky-room.js';
import { eventually } from '../fixtures/ws-client.js';
import { NdcSubscriber } from '../fixtures/ndc-peer.js';
import { NdcRtxPublisher, expectRedDelivered, offerRed } from '../fixtures/ndc-rtx-publisher.js';
import { buildNack } from '../../src/media/webrtc/rtp.js';
import type { SpeakersChanged } from '../../src/media/webrtc/active-speakers.js';

// Issue 18 items 3 and 4 with real WebRTC legs (node-datachannel): the SFU NACKs a
// publisher for what it lost on the way in and forwards the RTX repairs; it retransmits
// as RTX to a subscriber that negotiated it; it answers sender reports; and it tells who
// speaks from the audio level extension.

let t: TestServer;
const toClose: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of toClose.splice(0)) c.close();
});

beforeAll(async () => {
  t = await startTestServer({ webrtc: { bindAddress: '127.0.0.1' } });
});
afterAll(async () => {
  await t.close();
});

const createRoom = (admin: string): Promise<string> => createBlueskyRoom(t.url, admin);

const LOST = [100, 101, 150];

describe('RTX and NACK (#18.3)', () => {
  it('NACKs the publisher for packets lost on the way in, unwraps its RTX repairs and answers its SRs', async () => {
    const room = await createRoom('rtx-admin');
    const pub = new NdcRtxPublisher('rtx-pub', { lose: (seq) => LOST.includes(seq) });
    toClose.push(pub);
    const r = await pub.publish(t.url, room, 'rtx-pub');
    expect(r.status).toBe(200);
    expect(r.answer).toMatch(/m=video \d+ UDP\/TLS\/RTP\/SAVPF 96 97\r\n/);
    expect(r.answer).toMatch(/a=fmtp:97 apt=96/);
    expect(r.answer).not.toMatch(/ssrc-group/); // no SSRCs of ours to group
    const sub = new NdcSubscriber();
    toClose.push(sub);
    expect((await sub.subscribe(t.url, room, 'rtx-sub', 'rtx-pub')).status).toBe(200);
    pub.start();
    // The subscriber gets the lost packets all the same: the plain packet, not RTX (it
    // did not offer RTX), with the original's sequence number and payload.
    await eventually(
      () =>
        LOST.every((seq) =>
          sub.videoPackets.some((p) => p.readUInt16BE(2) === seq && NdcRtxPublisher.payloadOf(p) === seq),
        ),
      15_000,
      'the repaired packets at the subscriber',
    );
    for (const seq of LOST) expect(pub.nacked).toContain(seq);
    expect(pub.rtxSent).toBeGreaterThanOrEqual(LOST.length);
    const repaired = sub.videoPackets.filter((p) => LOST.includes(p.readUInt16BE(2)));
    for (const p of repaired) {
      expect(p[1]! & 0x7f).toBe(sub.videoPt);
      expect(p.length).toBe(200); // the OSN is gone again
    }
    // Packets that arrived were never NACKed (bounded retries, nothing else asked for).
    expect(pub.nacked.every((seq) => LOST.includes(seq))).toBe(true);
    expect(pub.nacked.length).toBeLessThanOrEqual(LOST.length * 3);
    // The room stats and /metrics count the NACKs and the repairs.
    const stats = (await t.server.app.inject({ method: 'GET', url: `/webrtc/room/${room}/stats` })).json<{
      publishers: Array<{ tracks: Array<{ kind: string; nacksSent: number; rtxRepaired: number }> }>;
    }>();
    const video = stats.publishers[0]!.tracks.find((x) => x.kind === 'video')!;
    expect(video.nacksSent).toBeGreaterThanOrEqual(LOST.length);
    expect(video.nacksSent).toBeLessThanOrEqual(LOST.length * 3);
    expect(video.rtxRepaired).toBeGreaterThanOrEqual(LOST.length);
    const metrics = (await t.server.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(Number(/^chorus_sfu_rtx_repaired_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(
      LOST.length,
    );
    expect(Number(/^chorus_sfu_nacks_sent_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(
      LOST.length,
    );

    // A sender report is answered by a receiver report about the video stream.
    pub.sendSenderReport(0x12345678);
    await eventually(
      () => pub.videoRtcp.some((b) => b[1] === 201 && b.readUInt32BE(8) === NdcRtxPublisher.VIDEO_SSRC),
      10_000,
      'a receiver report',
    );
    const rr = pub.videoRtcp.find((b) => b[1] === 201)!;
    expect(rr.readUInt32BE(24)).toBe(((0x12345678 & 0xffff) << 16) | 0x8000); // LSR
    expect(rr.readIntBE(13, 3)).toBe(0); // every lost packet was repaired
    expect(rr.readUInt32BE(16)).toBeGreaterThan(150); // extended highest sequence
  }, 60_000);

  it('retransmits to a subscriber that negotiated RTX as RTX, with its own SSRC and sequence', async () => {
    const room = await createRoom('rtx-out-admin');
    const pub = new NdcRtxPublisher('rtx-out-pub');
    toClose.push(pub);
    await pub.publish(t.url, room, 'rtx-out-pub');
    pub.start();
    const sub = new NdcSubscriber(100, 109, true, true);
    toClose.push(sub);
    const s = await sub.subscribe(t.url, room, 'rtx-out-sub', 'rtx-out-pub');
    expect(s.status).toBe(200);
    expect(s.answer).toMatch(/a=fmtp:101 apt=100/);
    const fid = /a=ssrc-group:FID (\d+) (\d+)/.exec(s.answer!);
    expect(fid).not.toBeNull();
    const [mainSsrc, rtxSsrc] = [Number(fid![1]), Number(fid![2])];
    await eventually(() => sub.videoPackets.length > 30, 10_000, 'media');
    expect(sub.videoPackets[0]!.readUInt32BE(8)).toBe(mainSsrc);
    // NACK two packets it has (SRTP would drop a plain resend as a replay; RTX is new).
    const got = sub.videoPackets.slice(-10).map((p) => p.readUInt16BE(2));
    sub.video.sendMessageBinary(buildNack(0x4321, mainSsrc, got[0]!, 0b1));
    await eventually(
      () => sub.videoPackets.filter((p) => p.readUInt32BE(8) === rtxSsrc).length >= 2,
      10_000,
      'two RTX packets',
    );
    const rtx = sub.videoPackets.filter((p) => p.readUInt32BE(8) === rtxSsrc);
    expect(rtx.map((p) => p[1]! & 0x7f)).toEqual([101, 101]);
    // Consecutive RTX sequence numbers; the OSN after the header names the packet.
    expect((rtx[1]!.readUInt16BE(2) - rtx[0]!.readUInt16BE(2)) & 0xffff).toBe(1);
    expect(rtx.map((p) => p.readUInt16BE(12))).toEqual([got[0], (got[0]! + 1) & 0xffff]);
    // The payload after the OSN is the original's.
    expect(rtx.map((p) => p.readUInt32BE(14))).toEqual([got[0], (got[0]! + 1) & 0xffff]);
  }, 60_000);
});

describe('active speaker (#18.4)', () => {
  it('reports the loud publisher of two, and follows when the other takes over', async () => {
    const room = await createRoom('speakers-admin');
    const changes: SpeakersChanged[] = [];
    const off = t.server.engine.sfu.speakers.events.on('speakersChanged', (e) => {
      if (e.room === room) changes.push(e);
    });
    try {
      const loud = new NdcRtxPublisher('loud', { audioLevelDbov: 20 });
      const silent = new NdcRtxPublisher('silent', { audioLevelDbov: 127 });
      toClose.push(loud, silent);
      for (const [p, user] of [
        [loud, 'loud'],
        [silent, 'silent'],
      ] as const) {
        const r = await p.publish(t.url, room, user);
        expect(r.status).toBe(200);
        expect(r.answer).toContain('urn:ietf:params:rtp-hdrext:ssrc-audio-level');
        p.start();
      }
      const speakersNow = () => changes[changes.length - 1]?.speakers.map((s) => s.participant);
      await eventually(() => speakersNow()?.[0] === 'loud', 10_000, 'the loud publisher reported');
      expect(speakersNow()).toEqual(['loud']);
      const level = changes[changes.length - 1]!.speakers[0]!.level;
      expect(level).toBeGreaterThan(0.05); // -20 dBov is 0.1
      expect(level).toBeLessThanOrEqual(0.1);
      expect(t.server.engine.sfu.speakers.speakers(room).map((s) => s.participant)).toEqual(['loud']);

      loud.audioLevelDbov = 127;
      silent.audioLevelDbov = 15;
      await eventually(() => speakersNow()?.join() === 'silent', 10_000, 'the other one reported alone');
      // Whoever spoke never appears while silent from the start.
      expect(changes.every((c) => c.speakers.length <= 2)).toBe(true);
      silent.close();
      loud.close();
      await eventually(() => speakersNow()?.length === 0, 15_000, 'nobody speaking once both left');
    } finally {
      off();
    }
  }, 60_000);
});

describe('Opus RED (#18.5)', () => {
  it('answers a RED publisher with RED first; RED goes to a subscriber that negotiated it, the primary to the others', async () => {
    const room = await createRoom('red-admin');
    const pub = new NdcRtxPublisher('red-pub', { red: true });
    toClose.push(pub);
    const r = await pub.publish(t.url, room, 'red-pub');
    expect(r.status).toBe(200);
    // Listed before Opus: what makes a browser send RED.
    expect(r.answer).toMatch(/m=audio \d+ UDP\/TLS\/RTP\/SAVPF 63 111\r\n/);
    expect(r.answer).toMatch(/a=fmtp:63 111\/111/);
    const plain = new NdcSubscriber();
    const red = new NdcSubscriber();
    toClose.push(plain, red);
    const p = await plain.subscribe(t.url, room, 'plain-sub', 'red-pub');
    expect(p.answer).not.toMatch(/red\//);
    const s = await red.subscribe(t.url, room, 'red-sub', 'red-pub', (sdp) => sdp, offerRed);
    expect(s.answer).toMatch(/a=rtpmap:62 red\/48000\/2/);
    expect(s.answer).toMatch(/a=fmtp:62 109\/109/);
    pub.start();
    await eventually(
      () => plain.audioPackets.length > 20 && red.audioPackets.length > 20,
      10_000,
      'audio at both subscribers',
    );
    expectRedDelivered(plain, red);
  }, 60_000);
});
