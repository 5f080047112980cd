import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NdcPublisher, NdcSubscriber } from '../fixtures/ndc-peer.js';
import { trickleNegotiate } from '../fixtures/ndc-trickle.js';
import { chorusApi, ofType, RtcClient, type Msg } from '../fixtures/rtc-client.js';
import { eventually } from '../fixtures/ws-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

const KEY = 'trickle-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true };

let ts: TestServer;
const clients: RtcClient[] = [];
beforeAll(async () => {
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`] },
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
  });
  const admin = await createAccessToken(KEY, SECRET, {
    grants: { roomAdmin: true, roomCreate: true },
    ttlSeconds: 300,
  });
  for (const name of ['trickle-a', 'trickle-b'])
    expect((await chorusApi(ts.url, admin, 'POST', '/rooms', { name })).status).toBe(201);
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await ts.close();
});

async function join(room: string, identity: string): Promise<{ client: RtcClient; join: Msg }> {
  const token = await createAccessToken(KEY, SECRET, { grants: MEMBER, room, identity, ttlSeconds: 300 });
  const r = await RtcClient.connect(ts.url, token);
  clients.push(r.client);
  return r;
}

/** Publishes from a node-datachannel leg that trickles every candidate (none in its offer). */
async function tricklePublish(client: RtcClient, answerCandidates: boolean): Promise<NdcPublisher> {
  const pub = new NdcPublisher();
  client.legs.push(pub);
  await trickleNegotiate(
    pub,
    {
      offer: async (sdp) => sdpOf(await client.request({ type: 'publish', sdp })),
      candidate: (c) =>
        client.socket.send(
          c === 'end'
            ? { type: 'trickle', end: true }
            : { type: 'trickle', candidate: c.candidate, sdpMid: c.mid },
        ),
    },
    { answerCandidates },
  );
  pub.start();
  return pub;
}

async function trickleSubscribe(client: RtcClient, identity: string): Promise<NdcSubscriber> {
  const sub = new NdcSubscriber();
  client.legs.push(sub);
  await trickleNegotiate(
    sub,
    {
      offer: async (sdp) => sdpOf(await client.request({ type: 'subscribe', identity, sdp })),
      candidate: (c) =>
        client.socket.send(
          c === 'end'
            ? { type: 'trickle', subscription: identity, end: true }
            : { type: 'trickle', subscription: identity, candidate: `a=${c.candidate}`, sdpMid: c.mid },
        ),
    },
    { answerCandidates: false },
  );
  return sub;
}

/** `who`'s video is published: in `join` (already there) or by `trackPublished`. */
const publishes =
  (who: string) =>
  (m: Msg): boolean =>
    ofType('trackPublished', (e) => e.identity === who)(m) ||
    (m.type === 'join' &&
      (m.others as Array<{ identity: string; tracks: unknown[] }>).some(
        (p) => p.identity === who && p.tracks.length > 0,
      ));

function sdpOf(reply: Msg): string {
  if (typeof reply.sdp !== 'string') throw new Error(`expected an answer, got ${JSON.stringify(reply)}`);
  return reply.sdp;
}

describe('native signalling: trickle ICE', () => {
  it('connects legs whose offers carry no candidate and whose candidates come only as trickle messages, even when the client cannot check the server', async () => {
    const { client: alice, join: aliceJoin } = await join('trickle-a', 'alice');
    expect(aliceJoin.trickle).toBe(true);
    // Alice drops the server's candidates from the answer: only the server checking her
    // trickled candidates can connect her leg.
    await tricklePublish(alice, false);
    const { client: bob } = await join('trickle-a', 'bob');
    await bob.wait(publishes('alice'), 30_000);
    const sub = await trickleSubscribe(bob, 'alice');
    await eventually(
      () => sub.videoPackets.length > 20 && sub.audioPackets.length > 20,
      60_000,
      () => `bob receives alice's media (video ${sub.videoPackets.length}, audio ${sub.audioPackets.length})`,
    );
  }, 120_000);

  it('answers bad trickle messages with errors and keeps the session and its media going', async () => {
    const { client: carol } = await join('trickle-b', 'carol');
    await tricklePublish(carol, true);
    const { client: dave } = await join('trickle-b', 'dave');
    await dave.wait(publishes('carol'), 30_000);
    const sub = await trickleSubscribe(dave, 'carol');
    const good = 'candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host';
    const errorOf = async (msg: Record<string, unknown>): Promise<unknown> => {
      const reply = await carol.request({ type: 'trickle', ...msg });
      expect(reply.type, JSON.stringify(reply)).toBe('error');
      return reply.code;
    };
    expect(await errorOf({ candidate: 'candidate:not a candidate' })).toBe('invalid_message');
    expect(await errorOf({ candidate: `${good}\r\na=fingerprint:sha-256 00` })).toBe('invalid_message');
    expect(await errorOf({})).toBe('invalid_message');
    expect(await errorOf({ candidate: good, end: true })).toBe('invalid_message');
    expect(await errorOf({ candidate: good, pc: 'main', subscription: 'dave' })).toBe('invalid_message');
    expect(await errorOf({ candidate: good, pc: 'Not A Name' })).toBe('invalid_message');
    expect(await errorOf({ candidate: good, sdpMid: 'x'.repeat(40) })).toBe('invalid_message');
    expect(await errorOf({ candidate: good, pc: 'screen' })).toBe('not_found');
    expect(await errorOf({ candidate: good, subscription: 'nobody' })).toBe('not_found');
    // Carol's main leg took her own candidates (2 on loopback at most) and the end; the
    // limit is 64 a leg.
    let code: unknown;
    for (let i = 0; i < 70 && code === undefined; i++) {
      const reply = await carol.request({
        type: 'trickle',
        candidate: good.replace('40000', String(40001 + i)),
      });
      if (reply.type === 'error') code = reply.code;
      else expect(reply).toMatchObject({ type: 'ok', for: 'trickle' });
    }
    expect(code).toBe('capacity');
    // A burst of trickles (a client joining a big room trickles for every subscription at
    // once) has its own budget: the requests that follow are not rate-limited.
    for (let i = 0; i < 150; i++)
      carol.socket.send({ type: 'trickle', subscription: 'nobody', candidate: good, requestId: `burst${i}` });
    // The session and its media go on.
    expect((await carol.request({ type: 'ping', timestamp: 1 })).type).toBe('pong');
    const burst = (): unknown[] =>
      carol.received.filter((m) => String(m.requestId).startsWith('burst')).map((m) => m.code);
    await eventually(
      () => burst().length === 150,
      30_000,
      () => `150 replies (${burst().length})`,
    );
    expect(burst()).toEqual(Array.from({ length: 150 }, () => 'not_found'));
    const before = sub.videoPackets.length;
    await eventually(
      () => sub.videoPackets.length > before + 50,
      60_000,
      () => `dave still receives carol's video (${sub.videoPackets.length}, was ${before})`,
    );
  }, 120_000);
});
