import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { WrtcPublisher, WrtcSubscriber } from '../fixtures/wrtc-peer.js';

// libwebrtc (the stack in Chrome) on both ends, through the Blue Sky routes: its offers
// carry everything a browser's do (VP9, AV1, H.264 profiles, RTX, RED, ULPFEC, header
// extensions), and what it decodes is the proof that the SFU's rewriting is right.

let t: TestServer;
const toClose: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of toClose.splice(0)) c.close();
});

beforeAll(async () => {
  t = await startTestServer({
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1', peerTimeoutSeconds: 3 },
  });
});
afterAll(async () => {
  await t.close();
});

async function createRoom(admin: string): Promise<string> {
  const res = await fetch(`${t.url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: admin }),
  });
  return ((await res.json()) as { id: string }).id;
}

/** The codecs an m-section of an SDP keeps, by rtpmap name. */
function codecsOf(sdp: string, kind: 'audio' | 'video'): string[] {
  const section = sdp.split(/\r\n(?=m=)/).find((s) => s.startsWith(`m=${kind}`)) ?? '';
  return [...section.matchAll(/a=rtpmap:\d+ ([^/]+)\//g)].map((m) => m[1]!);
}

describe('a libwebrtc publisher and subscriber', () => {
  it('answers with one forwardable codec per kind, and the subscriber decodes the picture and the tone', async () => {
    const room = await createRoom('wrtc-admin');
    const pub = new WrtcPublisher();
    toClose.push(pub);
    const offered = await (async () => {
      const r = await pub.publish(t.url, room, 'wrtc-pub');
      expect(r.status).toBe(200);
      return r.answer!;
    })();
    // The offer had VP9, AV1, RTX, RED, ULPFEC: the answer keeps one codec per kind, RTX
    // for the video and Opus RED listed first (#18).
    expect(codecsOf(offered, 'video')).toEqual(['VP8', 'rtx']);
    expect(codecsOf(offered, 'audio')).toEqual(['red', 'opus']);
    pub.start();
    await eventually(() => t.server.engine.sfu.stats().publishedTracks === 2, 10_000, 'published tracks');

    const before = t.server.engine.sfu.stats().keyframeRequests;
    const sub = new WrtcSubscriber();
    toClose.push(sub);
    expect((await sub.subscribe(t.url, room, 'wrtc-sub', 'wrtc-pub')).status).toBe(200);
    await eventually(
      () => sub.framesDecoded > 30 && sub.audioPeak > 4000,
      15_000,
      'decoded video frames and audio',
    );
    expect(sub.lastFrameSize).toMatch(/^\d+x\d+$/);
    const inbound = await sub.inbound();
    expect(inbound.video?.codec).toBe('video/VP8');
    expect(inbound.audio?.codec).toBe('audio/opus');
    expect(inbound.video!.packetsReceived).toBeGreaterThanOrEqual(30);
    expect(inbound.video!.packetsLost).toBe(0);
    // Subscribing asked the publisher for a keyframe.
    expect(t.server.engine.sfu.stats().keyframeRequests).toBeGreaterThan(before);
    // The same figures are on /metrics.
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/^chorus_sfu_peers\{role="subscriber"\} 1$/m);
    expect(metrics).toMatch(/^chorus_sfu_published_tracks 2$/m);
    const forwarded = Number(/^chorus_sfu_rtp_packets_forwarded_total (\d+)$/m.exec(metrics)?.[1]);
    expect(forwarded).toBeGreaterThanOrEqual(inbound.video!.packetsReceived);
  }, 40_000);

  it('frees every leg when the clients go away', async () => {
    await eventually(() => t.server.engine.sfu.stats().peers === 0, 15_000, 'a clean start');
    const room = await createRoom('wrtc-admin2');
    const pub = new WrtcPublisher();
    toClose.push(pub);
    expect((await pub.publish(t.url, room, 'p')).status).toBe(200);
    pub.start();
    await eventually(() => t.server.engine.sfu.stats().publishedTracks === 2, 10_000, 'published tracks');
    const sub = new WrtcSubscriber();
    toClose.push(sub);
    expect((await sub.subscribe(t.url, room, 's', 'p')).status).toBe(200);
    await eventually(() => sub.framesDecoded > 5, 15_000, 'decoded frames');
    expect(t.server.engine.sfu.stats().peers).toBe(2);
    sub.close();
    pub.close();
    await eventually(() => t.server.engine.sfu.stats().peers === 0, 15_000, 'every leg to close');
    expect(t.server.engine.sfu.stats().forwardTargets).toBe(0);
  }, 40_000);
});
