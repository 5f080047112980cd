import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { RtcClient, rtcUrl, type Msg } from '../fixtures/rtc-client.js';
import { eventually, TestSocket } from '../fixtures/ws-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

const KEY = 'rtc-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true };

let ts: TestServer;
let admin: string;
const clients: RtcClient[] = [];
beforeAll(async () => {
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`] },
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
  });
  admin = await token(undefined, undefined, { roomAdmin: true, roomCreate: true, roomList: true });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => ts.close());

function token(
  room: string | undefined,
  identity: string | undefined,
  grants: Grants = MEMBER,
  ttlSeconds = 300,
): Promise<string> {
  return createAccessToken(KEY, SECRET, {
    grants,
    ttlSeconds,
    ...(room ? { room } : {}),
    ...(identity ? { identity, name: `${identity} name`, metadata: `{"who":"${identity}"}` } : {}),
  });
}

async function join(
  room: string,
  identity: string,
  grants: Grants = MEMBER,
): Promise<{ client: RtcClient; join: Msg }> {
  const r = await RtcClient.connect(ts.url, await token(room, identity, grants));
  clients.push(r.client);
  return r;
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${ts.url}/chorus/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${admin}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

const ofType =
  (type: string, more: (m: Msg) => boolean = () => true) =>
  (m: Msg) =>
    m.type === type && more(m);

describe('native signalling: joining', () => {
  it('refuses a missing, bad, expired or under-privileged token before the upgrade, with the native error body', async () => {
    const url = `${ts.wsUrl}/chorus/v1/rtc`;
    const missing = await TestSocket.refusal(url);
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.body)).toEqual({
      error: { code: 'unauthenticated', message: expect.stringMatching(/missing access token/) as unknown },
    });
    const forged = await TestSocket.refusal(rtcUrl(ts.url, `${(await token('r', 'a')).slice(0, -4)}AAAA`));
    expect(forged.status).toBe(401);
    expect(JSON.parse(forged.body)).toMatchObject({
      error: { code: 'unauthenticated', message: 'token signature does not match its key' },
    });
    const expired = await TestSocket.refusal(rtcUrl(ts.url, await token('r', 'a', MEMBER, -10)));
    expect(expired.status).toBe(401);
    expect(JSON.parse(expired.body)).toMatchObject({ error: { message: 'token expired' } });
    const noJoin = await TestSocket.refusal(rtcUrl(ts.url, await token('r', 'a', { canPublish: true })));
    expect(noJoin.status).toBe(403);
    expect(JSON.parse(noJoin.body)).toMatchObject({
      error: { code: 'forbidden', message: 'token lacks the roomJoin grant for room r' },
    });
    const noRoom = await TestSocket.refusal(rtcUrl(ts.url, await token(undefined, 'a')));
    expect(noRoom.status).toBe(403);
    // Authorization header works too (for clients that can set it).
    const viaHeader = await TestSocket.open(`${ts.wsUrl}/chorus/v1/rtc`, {
      authorization: `Bearer ${await token('hdr', 'h')}`,
    });
    const first = JSON.parse(await viaHeader.next()) as Msg;
    expect(first).toMatchObject({
      type: 'join',
      seq: 1,
      room: { name: 'hdr' },
      participant: { identity: 'h' },
    });
    viaHeader.close();
  });

  it('answers join with the room, the participant and the others, and tells the others in order', async () => {
    expect((await api('POST', '/rooms', { name: 'j1', metadata: 'topic' })).status).toBe(201);
    const a = await join('j1', 'alice');
    expect(a.join).toMatchObject({
      type: 'join',
      seq: 1,
      protocol: 1,
      room: { name: 'j1', metadata: 'topic', maxParticipants: 0 },
      participant: { identity: 'alice', name: 'alice name', metadata: '{"who":"alice"}', tracks: [] },
      others: [],
      permissions: {
        canPublish: true,
        canSubscribe: true,
        canPublishData: true,
        canPublishSources: ['camera', 'microphone', 'screen'],
      },
      autoSubscribe: true,
      resumeGraceSeconds: 20,
      resumeFailed: false,
    });
    expect(a.join.resumeToken).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    await a.client.publish();
    const b = await join('j1', 'bob');
    const others = b.join.others as Array<{ identity: string; tracks: Array<{ id: string }> }>;
    expect(others.map((o) => o.identity)).toEqual(['alice']);
    expect(others[0]!.tracks.map((t) => t.id).sort()).toEqual(['alice-audio', 'alice-video']);
    expect(others[0]).toMatchObject({ name: 'alice name', metadata: '{"who":"alice"}' });

    // Alice hears: her own tracks, then bob joining (never herself joining).
    const joined = await a.client.wait(ofType('participantJoined'));
    expect(joined.participant).toMatchObject({ identity: 'bob', name: 'bob name' });
    const types = a.client.received.map((m) => m.type);
    expect(types.filter((t) => t === 'participantJoined')).toHaveLength(1);
    const seqs = a.client.received.map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));

    // Bob publishes: alice sees participant... then his tracks, after his join, in order.
    await b.client.publish();
    await a.client.wait(
      ofType('trackPublished', (m) => m.identity === 'bob' && (m.track as { kind: string }).kind === 'video'),
    );
    const ix = (pred: (m: Msg) => boolean): number => a.client.received.findIndex(pred);
    expect(ix(ofType('participantJoined'))).toBeLessThan(
      ix(ofType('trackPublished', (m) => m.identity === 'bob')),
    );

    b.client.socket.send({ type: 'leave' });
    expect((await b.client.socket.closed).code).toBe(1000);
    const left = await a.client.wait(ofType('participantLeft'));
    expect(left).toMatchObject({ identity: 'bob' });
  });
});

describe('native signalling: media', () => {
  it('publishes and subscribes with media flowing, and renegotiates when a second publisher arrives', async () => {
    const a = await join('m1', 'alice');
    const b = await join('m1', 'bob');
    const pubA = await a.client.publish();
    await b.client.wait(
      ofType(
        'trackPublished',
        (m) => m.identity === 'alice' && (m.track as { kind: string }).kind === 'video',
      ),
    );
    const subA = await b.client.subscribe('alice');
    await eventually(
      () => subA.videoPackets.length > 20 && subA.audioPackets.length > 20,
      20_000,
      'alice media at bob',
    );
    expect(pubA.videoSeq).toBeGreaterThan(0);

    // A second publisher: bob hears of carol's tracks and subscribes to her too.
    const c = await join('m1', 'carol');
    await c.client.publish({ video: 'screen' });
    const carolVideo = await b.client.wait(
      ofType(
        'trackPublished',
        (m) => m.identity === 'carol' && (m.track as { kind: string }).kind === 'video',
      ),
    );
    expect(carolVideo.track).toMatchObject({ id: 'carol-video', source: 'screen', muted: false });
    const subC = await b.client.subscribe('carol');
    await eventually(() => subC.videoPackets.length > 20, 20_000, 'carol media at bob');
    const before = subA.videoPackets.length;
    await eventually(() => subA.videoPackets.length > before + 20, 20_000, 'alice media still at bob');
  });

  it('enforces canPublish, canPublishSources and canSubscribe', async () => {
    const viewer = await join('g1', 'viewer', { roomJoin: true, canSubscribe: true });
    expect(viewer.join.permissions).toMatchObject({ canPublish: false, canSubscribe: true });
    const refused = await viewer.client.request({ type: 'publish', sdp: 'v=0\r\n' });
    expect(refused).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: 'token lacks the canPublish grant',
    });

    const mic = await join('g1', 'mic', {
      roomJoin: true,
      canPublish: true,
      canPublishSources: ['microphone'],
    });
    await expect(mic.client.publish()).rejects.toThrow(/may not publish the source camera/);

    const blind = await join('g1', 'blind', { roomJoin: true, canPublish: true });
    const pub = await blind.client.publish();
    expect(pub.videoSeq).toBeGreaterThanOrEqual(0);
    const sub = await viewer.client.request({ type: 'subscribe', identity: 'blind', sdp: 'v=0\r\n' });
    expect(sub).toMatchObject({ type: 'error', code: 'invalid_sdp' });
    const noSub = await blind.client.request({ type: 'subscribe', identity: 'viewer', sdp: 'v=0\r\n' });
    expect(noSub).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: 'token lacks the canSubscribe grant',
    });
    const noData = await viewer.client.request({ type: 'data', payload: 'x' });
    expect(noData).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: 'token lacks the canPublishData grant',
    });
    // The session goes on after each refusal.
    expect(await viewer.client.request({ type: 'ping', timestamp: 7 })).toMatchObject({
      type: 'pong',
      timestamp: 7,
    });
  });
});
