import { Audio, PeerConnection, Video, type Track } from 'node-datachannel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NdcClient } from '../fixtures/ndc-peer.js';
import { ofType, RtcClient, type Msg } from '../fixtures/rtc-client.js';
import { eventually } from '../fixtures/ws-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

/**
 * Camera and screen at once over native signalling (#19 items 3-4): a `publish` with
 * `pc: 'screen'` is a second publisher leg next to the camera's, while the room still
 * shows one participant with all its tracks, and a subscriber receives both videos on
 * one leg, each section the track it names.
 */

const KEY = 'screen-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true };
/** A byte each fake publisher writes into its video payloads, so a receiver tells them apart. */
const CAMERA_MARK = 0xca;
const SCREEN_MARK = 0x5c;

let ts: TestServer;
const clients: RtcClient[] = [];
const legs: NdcClient[] = [];
beforeAll(async () => {
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`] },
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
  });
});
afterEach(() => {
  for (const l of legs.splice(0)) l.close();
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await ts.close();
});

async function join(room: string, identity: string): Promise<RtcClient> {
  const token = await createAccessToken(KEY, SECRET, { grants: MEMBER, ttlSeconds: 300, room, identity });
  const { client } = await RtcClient.connect(ts.url, token);
  clients.push(client);
  return client;
}

/** Sends fake VP8 (with `mark` in every payload) and, when `withAudio`, Opus, every 10 ms. */
class MarkedPublisher extends NdcClient {
  private tracks: Track[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly mark: number,
    private readonly ssrc: number,
    private readonly withAudio: boolean,
  ) {
    super(`publisher-${mark}`);
  }

  protected addTracks(pc: PeerConnection): void {
    const v = new Video('video', 'SendOnly');
    v.addVideoCodec(96, 'VP8');
    v.addSSRC(this.ssrc, 'pub', `stream${this.mark}`, `video${this.mark}`);
    this.tracks.push(pc.addTrack(v));
    if (!this.withAudio) return;
    const a = new Audio('audio', 'SendOnly');
    a.addOpusCodec(111);
    a.addSSRC(this.ssrc + 1, 'pub', `stream${this.mark}`, `audio${this.mark}`);
    this.tracks.push(pc.addTrack(a));
  }

  start(): void {
    let seq = 0;
    this.timer = setInterval(() => {
      seq++;
      for (const [i, t] of this.tracks.entries()) {
        if (!t.isOpen()) continue;
        const p = Buffer.alloc(100);
        p[0] = 0x80;
        p[1] = i === 0 ? 96 : 111;
        p.writeUInt16BE(seq & 0xffff, 2);
        p.writeUInt32BE(seq * 3000, 4);
        p.writeUInt32BE(this.ssrc + i, 8);
        p[12] = i === 0 ? 0x10 : 0; // a VP8 payload descriptor: start of a partition
        p[20] = this.mark;
        t.sendMessageBinary(p);
      }
    }, 10);
  }

  override close(): void {
    clearInterval(this.timer);
    super.close();
  }
}

/** Receives two videos and one audio; counts each video section's packets by their mark. */
class TwoVideoSubscriber extends NdcClient {
  readonly marks: Array<Map<number, number>> = [new Map(), new Map()];

  constructor() {
    super('two-video-subscriber');
  }

  protected addTracks(pc: PeerConnection): void {
    for (const [i, mid] of ['v0', 'v1'].entries()) {
      const v = new Video(mid, 'RecvOnly');
      v.addVideoCodec(100, 'VP8');
      const track = pc.addTrack(v);
      track.onMessage((m) => {
        const b = Buffer.from(m);
        if (b[1]! >= 192 && b[1]! <= 223) return; // RTCP
        const mark = b[20]!;
        this.marks[i]!.set(mark, (this.marks[i]!.get(mark) ?? 0) + 1);
      });
    }
    const a = new Audio('a0', 'RecvOnly');
    a.addOpusCodec(109);
    pc.addTrack(a);
  }

  count(section: number, mark: number): number {
    return this.marks[section]!.get(mark) ?? 0;
  }
}

async function publishOn(
  client: RtcClient,
  pub: MarkedPublisher,
  extra: Record<string, unknown>,
): Promise<Msg> {
  legs.push(pub);
  let reply: Msg | undefined;
  await pub.negotiate(async (offer) => {
    reply = await client.request({ type: 'publish', sdp: offer, ...extra });
    if (typeof reply.sdp !== 'string') throw new Error(`expected an answer, got ${JSON.stringify(reply)}`);
    return reply.sdp;
  });
  pub.start();
  return reply!;
}

describe('native signalling: camera and screen on two publisher peer connections', () => {
  it('publishes both at once as one participant; a subscriber receives each on the section it names; unpublishing the screen leaves the camera', async () => {
    const alice = await join('scr1', 'alice');
    const bob = await join('scr1', 'bob');
    const camera = await publishOn(alice, new MarkedPublisher(CAMERA_MARK, 1000, true), {});
    expect(camera).toMatchObject({
      type: 'published',
      trackIds: { audio: 'alice-audio', video: 'alice-video' },
    });
    const screen = await publishOn(alice, new MarkedPublisher(SCREEN_MARK, 2000, false), {
      pc: 'screen',
      sources: { video: 'screen' },
    });
    expect(screen).toMatchObject({ type: 'published', trackIds: { video: 'alice-screen' } });
    expect(screen.trackIds).not.toHaveProperty('audio');

    // Bob hears of all three tracks, the screen's with its source, all from one alice.
    const shown = await bob.wait(
      ofType('trackPublished', (m) => (m.track as { id: string }).id === 'alice-screen'),
    );
    expect(shown.track).toMatchObject({ kind: 'video', source: 'screen' });
    await bob.wait(ofType('trackPublished', (m) => (m.track as { id: string }).id === 'alice-video'));
    // Someone joining now sees one alice with all three tracks.
    const carol = await join('scr1', 'carol');
    const seen = (
      carol.received[0]!.others as Array<{ identity: string; tracks: Array<{ id: string }> }>
    ).filter((p) => p.identity === 'alice');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.tracks.map((t) => t.id).sort()).toEqual(['alice-audio', 'alice-screen', 'alice-video']);

    // Sections in the order bob names: the screen first, then the camera.
    const sub = new TwoVideoSubscriber();
    legs.push(sub);
    await sub.negotiate(async (offer) => {
      const reply = await bob.request({
        type: 'subscribe',
        identity: 'alice',
        sdp: offer,
        trackIds: ['alice-screen', 'alice-video', 'alice-audio'],
      });
      if (typeof reply.sdp !== 'string') throw new Error(`expected an answer, got ${JSON.stringify(reply)}`);
      return reply.sdp;
    });
    await eventually(() => sub.count(0, SCREEN_MARK) > 50 && sub.count(1, CAMERA_MARK) > 50, 30_000);
    expect(sub.count(0, CAMERA_MARK)).toBe(0);
    expect(sub.count(1, SCREEN_MARK)).toBe(0);

    // The screen share ends: only its track goes, the camera keeps flowing to bob.
    expect(await alice.request({ type: 'unpublish', pc: 'screen' })).toMatchObject({
      type: 'ok',
      for: 'unpublish',
    });
    const gone = await bob.wait(ofType('trackUnpublished', (m) => m.trackId === 'alice-screen'));
    expect(gone.identity).toBe('alice');
    const cameraBefore = sub.count(1, CAMERA_MARK);
    await eventually(() => sub.count(1, CAMERA_MARK) > cameraBefore + 50, 30_000);
    expect(bob.received.some((m) => m.type === 'trackUnpublished' && m.trackId !== 'alice-screen')).toBe(
      false,
    );
    const dave = await join('scr1', 'dave');
    const later = (
      dave.received[0]!.others as Array<{ identity: string; tracks: Array<{ id: string }> }>
    ).find((p) => p.identity === 'alice');
    expect(later?.tracks.map((t) => t.id).sort()).toEqual(['alice-audio', 'alice-video']);
  });

  it('refuses a bad pc name and a bad trackIds list; an unknown pc unpublishes nothing, `main` the camera only', async () => {
    const alice = await join('scr2', 'alice');
    const bad = await alice.request({ type: 'publish', sdp: 'v=0', pc: 'Screen One!' });
    expect(bad).toMatchObject({ type: 'error', code: 'invalid_message' });
    expect(String(bad.message)).toMatch(/pc/);
    const badIds = await alice.request({ type: 'subscribe', identity: 'bob', sdp: 'v=0', trackIds: [42] });
    expect(badIds).toMatchObject({ type: 'error', code: 'invalid_message' });
    // The camera leg stays through an unpublish of a pc that does not exist.
    const bob = await join('scr2', 'bob');
    await publishOn(alice, new MarkedPublisher(CAMERA_MARK, 3000, true), {});
    await bob.wait(ofType('trackPublished', (m) => (m.track as { id: string }).id === 'alice-video'));
    expect(await alice.request({ type: 'unpublish', pc: 'nothing' })).toMatchObject({ type: 'ok' });
    expect(bob.received.some((m) => m.type === 'trackUnpublished')).toBe(false);
    // Then a main unpublish by name ends the camera's tracks.
    expect(await alice.request({ type: 'unpublish', pc: 'main' })).toMatchObject({ type: 'ok' });
    const gone = await bob.wait(ofType('trackUnpublished', (m) => m.trackId === 'alice-video'));
    expect(gone.identity).toBe('alice');
    expect(bob.received.filter((m) => m.type === 'trackUnpublished').map((m) => m.trackId)).not.toContain(
      undefined,
    );
  });
});
