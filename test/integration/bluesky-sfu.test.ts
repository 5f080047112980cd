import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';
import { NdcPublisher, NdcSubscriber } from '../fixtures/ndc-peer.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';

let t: TestServer;

async function createRoom(admin: string): Promise<string> {
  const res = await fetch(`${t.url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: admin }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

beforeAll(async () => {
  t = await startTestServer({
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1', keyframeIntervalMs: 1000 },
  });
});
afterAll(async () => {
  await t.close();
});

describe('SFU through the Blue Sky routes', () => {
  it("forwards a publisher to a subscriber with the subscriber's payload types and the SFU's SSRCs", async () => {
    const room = await createRoom('alice');
    const pub = new NdcPublisher();
    const r = await pub.publish(t.url, room, 'alice');
    expect(r.status).toBe(200);
    // The answer keeps one codec per section: no RTX, no RED.
    expect(r.answer).toMatch(/m=video \d+ UDP\/TLS\/RTP\/SAVPF 96\r\n/);
    expect(r.answer).not.toMatch(/rtx|red\//i);
    pub.start();
    await eventually(() => t.server.engine.sfu.stats().publishedTracks === 2, 10_000, 'published tracks');

    const sub = new NdcSubscriber(100, 109);
    const s = await sub.subscribe(t.url, room, 'bob', 'alice');
    expect(s.status).toBe(200);
    const videoSsrc = Number(/m=video[\s\S]*?a=ssrc:(\d+) /.exec(s.answer!)![1]);
    const audioSsrc = Number(/m=audio[\s\S]*?a=ssrc:(\d+) /.exec(s.answer!)![1]);
    expect(videoSsrc).not.toBe(NdcPublisher.VIDEO_SSRC);
    await eventually(
      () => sub.videoPackets.length > 20 && sub.audioPackets.length > 20,
      10_000,
      'forwarded media',
    );
    expect(sub.videoPackets.every((p) => (p[1]! & 0x7f) === 100 && p.readUInt32BE(8) === videoSsrc)).toBe(
      true,
    );
    expect(sub.audioPackets.every((p) => (p[1]! & 0x7f) === 109 && p.readUInt32BE(8) === audioSsrc)).toBe(
      true,
    );

    // A new subscriber triggered a keyframe request at the publisher.
    await eventually(() => pub.plis() >= 1, 5000, 'a PLI at the publisher');
    sub.close();
    pub.close();
  }, 30_000);
});
