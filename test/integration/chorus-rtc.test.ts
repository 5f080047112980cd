import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NdcRtxPublisher } from '../fixtures/ndc-rtx-publisher.js';
import { chorusApi, ofType, RtcClient, rtcUrl, videoOf, type Msg } from '../fixtures/rtc-client.js';
import { eventually, TestSocket } from '../fixtures/ws-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

const KEY = 'rtc-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true };

let ts: TestServer;
let admin: string;
const receiver = new WebhookReceiver(KEY, SECRET);
const clients: RtcClient[] = [];
beforeAll(async () => {
  await receiver.start();
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`], webhookUrls: [`http://127.0.0.1:${receiver.port}/hook`] },
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
  });
  admin = await token(undefined, undefined, { roomAdmin: true, roomCreate: true, roomList: true });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await ts.close();
  await receiver.stop();
});

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

const api = (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> =>
  chorusApi(ts.url, admin, method, path, body);

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
    await a.client.wait(videoOf('bob'));
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
    await b.client.wait(videoOf('alice'));
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
    const carolVideo = await b.client.wait(videoOf('carol'));
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

describe('native signalling: mute and data', () => {
  it('mutes a track by the room service: the SFU stops forwarding it, publisher and subscribers are told, only the service unmutes', async () => {
    expect((await api('POST', '/rooms', { name: 'mu1' })).status).toBe(201);
    const a = await join('mu1', 'alice');
    const b = await join('mu1', 'bob');
    const pub = await a.client.publish();
    await b.client.wait(videoOf('alice'));
    const sub = await b.client.subscribe('alice');
    await eventually(() => sub.videoPackets.length > 20, 20_000, 'video at bob');

    expect(
      await api('POST', '/rooms/mu1/participants/alice/tracks/alice-video/mute', { muted: true }),
    ).toEqual({ status: 204, body: undefined });
    const told = { identity: 'alice', trackId: 'alice-video', muted: true, byServer: true };
    expect(await a.client.wait(ofType('trackMuted'))).toMatchObject(told);
    expect(await b.client.wait(ofType('trackMuted'))).toMatchObject(told);
    // Forwarding stopped: while the publisher sends 150 more packets, bob gets at most the few in flight.
    const atMute = sub.videoPackets.length;
    const sentAtMute = pub.videoSeq;
    await eventually(() => pub.videoSeq > sentAtMute + 150, 20_000, 'the publisher sending on');
    expect(sub.videoPackets.length - atMute).toBeLessThan(10);
    // Audio still flows.
    const audioAt = sub.audioPackets.length;
    await eventually(() => sub.audioPackets.length > audioAt + 20, 20_000, 'audio still at bob');
    // The participant listing shows it muted.
    const listed = (await api('GET', '/rooms/mu1/participants')).body;
    expect(JSON.stringify(listed)).toContain(
      '"id":"alice-video","kind":"video","source":"camera","codec":"VP8","muted":true',
    );

    // The publisher cannot lift a server mute.
    expect(await a.client.request({ type: 'mute', trackId: 'alice-video', muted: false })).toMatchObject({
      type: 'error',
      code: 'forbidden',
    });
    expect(
      await api('POST', '/rooms/mu1/participants/alice/tracks/alice-video/mute', { muted: false }),
    ).toMatchObject({ status: 204 });
    await b.client.wait(ofType('trackMuted', (m) => m.muted === false));
    const atUnmute = sub.videoPackets.length;
    await eventually(() => sub.videoPackets.length > atUnmute + 20, 20_000, 'video again at bob');

    // The publisher's own mute, and its unmute.
    expect(await a.client.request({ type: 'mute', trackId: 'alice-audio', muted: true })).toMatchObject({
      type: 'ok',
      for: 'mute',
    });
    expect(await b.client.wait(ofType('trackMuted', (m) => m.trackId === 'alice-audio'))).toMatchObject({
      muted: true,
      byServer: false,
    });
    expect(await a.client.request({ type: 'mute', trackId: 'nope', muted: true })).toMatchObject({
      type: 'error',
      code: 'not_found',
    });

    // Wrong ids: 404 with the native body.
    expect(await api('POST', '/rooms/mu1/participants/alice/tracks/nope/mute', { muted: true })).toEqual({
      status: 404,
      body: { error: { code: 'not_found', message: 'no track nope of alice in room mu1' } },
    });
    expect(
      (await api('POST', '/rooms/mu1/participants/nobody/tracks/alice-video/mute', { muted: true })).status,
    ).toBe(404);
    expect(
      (await api('POST', '/rooms/mu1/participants/alice/tracks/alice-video/mute', { muted: 'yes' })).status,
    ).toBe(400);
  });

  it('delivers data to everyone else or to some identities, from participants and from the room service', async () => {
    const a = await join('d1', 'alice');
    const b = await join('d1', 'bob');
    const c = await join('d1', 'carol');
    expect(
      await a.client.request({ type: 'data', payload: 'to carol', to: ['carol'], topic: 't' }),
    ).toMatchObject({ type: 'ok', for: 'data' });
    expect(await a.client.request({ type: 'data', payload: 'to all' })).toMatchObject({ type: 'ok' });
    expect(await c.client.wait(ofType('data'))).toMatchObject({
      from: 'alice',
      payload: 'to carol',
      topic: 't',
    });
    await c.client.wait(ofType('data', (m) => m.payload === 'to all'));
    // Bob got the broadcast, which left after the targeted one: the targeted one never came.
    await b.client.wait(ofType('data', (m) => m.payload === 'to all'));
    expect(b.client.received.filter((m) => m.type === 'data').map((m) => m.payload)).toEqual(['to all']);
    expect(a.client.received.filter((m) => m.type === 'data')).toEqual([]);

    expect(
      await api('POST', '/rooms/d1/data', { data: 'from the server', destinationIdentities: ['bob'] }),
    ).toEqual({ status: 204, body: undefined });
    const fromServer = await b.client.wait(ofType('data', (m) => m.payload === 'from the server'));
    expect(fromServer.from).toBeUndefined();
    expect((await api('POST', '/rooms/d1/data', { data: 'x'.repeat(20_000) })).status).toBe(400);
    const tooBig = await a.client.request({ type: 'data', payload: 'x'.repeat(20_000) });
    expect(tooBig).toMatchObject({ type: 'error', code: 'invalid_message' });
  });
});

describe('native signalling: speakers', () => {
  it("sends the SFU's active speakers, loudest first", async () => {
    const a = await join('sp1', 'alice');
    const b = await join('sp1', 'bob');
    await a.client.publish(undefined, new NdcRtxPublisher('loud', { audioLevelDbov: 20 }));
    await b.client.publish(undefined, new NdcRtxPublisher('quiet', { audioLevelDbov: 127 }));
    const heard = await b.client.wait(
      ofType('speakers', (m) => (m.speakers as unknown[]).length > 0),
      20_000,
    );
    expect(heard.speakers).toEqual([{ identity: 'alice', level: expect.closeTo(0.1, 1) as unknown }]);
  });

  it('tells someone joining who already speaks; the others are not told the same list again', async () => {
    const a = await join('sp2', 'alice');
    const b = await join('sp2', 'bob');
    await a.client.publish(undefined, new NdcRtxPublisher('loud', { audioLevelDbov: 20 }));
    const speaking = ofType('speakers', (m) => (m.speakers as unknown[]).length > 0);
    await b.client.wait(speaking, 20_000);
    const c = await join('sp2', 'carol');
    const heard = await c.client.wait(speaking, 20_000);
    expect(heard.speakers).toEqual([{ identity: 'alice', level: expect.closeTo(0.1, 1) as unknown }]);
    // Bob heard of carol, and of nobody new speaking.
    await b.client.wait(ofType('participantJoined'), 20_000);
    await c.client.request({ type: 'data', payload: 'after the join' });
    await b.client.wait(
      ofType('data', (m) => m.payload === 'after the join'),
      20_000,
    );
    expect(b.client.received.filter((m) => m.type === 'speakers')).toHaveLength(1);
  });
});

describe('native signalling: unpublish and webhooks', () => {
  it('keeps an unpublishing participant in the room, and sends webhooks for native participants and tracks', async () => {
    const a = await join('w1', 'alice');
    const b = await join('w1', 'bob');
    await a.client.publish({ audio: 'microphone', video: 'screen' });
    await b.client.wait(videoOf('alice'));
    expect(await a.client.request({ type: 'unpublish' })).toMatchObject({ type: 'ok', for: 'unpublish' });
    await b.client.wait(ofType('trackUnpublished', (m) => m.trackId === 'alice-video'));
    await b.client.wait(ofType('trackUnpublished', (m) => m.trackId === 'alice-audio'));
    // Still there: the data still reaches her, and nobody saw her leave.
    await b.client.request({ type: 'data', payload: 'still here?' });
    await a.client.wait(ofType('data', (m) => m.payload === 'still here?'));
    expect(b.client.received.some((m) => m.type === 'participantLeft')).toBe(false);
    a.client.socket.send({ type: 'leave' });
    await eventually(
      () => receiver.of('w1').includes('participant_left:alice'),
      20_000,
      'alice left (webhook)',
    );
    const events = receiver.of('w1');
    expect(events.slice(0, 3)).toEqual([
      'room_started',
      'participant_joined:alice',
      'participant_joined:bob',
    ]);
    expect(events).toContain('track_published:alice:video');
    expect(events).toContain('track_unpublished:alice:audio');
    const screen = receiver.events.find(
      (e) => e.room.name === 'w1' && e.event === 'track_published' && e.track?.kind === 'video',
    );
    expect(screen?.track).toMatchObject({ id: 'alice-video', source: 'screen' });
  });
});

describe('native signalling: bad input', () => {
  it('closes the socket on malformed JSON (4400), an unknown type (4400) and an oversize frame (1009), and keeps serving', async () => {
    const bad = await join('b1', 'mallory');
    bad.client.socket.send('{not json');
    expect(await bad.client.wait(ofType('error'))).toMatchObject({
      code: 'invalid_message',
      message: 'malformed JSON',
    });
    expect(await bad.client.socket.closed).toEqual({ code: 4400, reason: 'malformed JSON' });

    const unknown = await join('b1', 'mallory2');
    unknown.client.socket.send({ type: 'teleport' });
    expect((await unknown.client.socket.closed).code).toBe(4400);
    const notObject = await join('b1', 'mallory3');
    notObject.client.socket.send('42');
    expect((await notObject.client.socket.closed).code).toBe(4400);
    const nul = await join('b1', 'mallory5');
    nul.client.socket.send('null');
    expect((await nul.client.socket.closed).code).toBe(4400);
    const binary = await join('b1', 'mallory6');
    binary.client.socket.ws.send(Buffer.from([1, 2, 3]));
    expect((await binary.client.socket.closed).code).toBe(4400);

    const big = await join('b1', 'mallory4');
    big.client.socket.send({ type: 'data', payload: 'x'.repeat(70_000) });
    expect((await big.client.socket.closed).code).toBe(1009);

    // A known request with a bad field is answered, and the session goes on.
    const fine = await join('b1', 'fine');
    expect(await fine.client.request({ type: 'subscribe', identity: 42 })).toMatchObject({
      type: 'error',
      code: 'invalid_message',
    });
    expect(await fine.client.request({ type: 'ping', timestamp: 1 })).toMatchObject({ type: 'pong' });
    // The server keeps serving: a new participant joins and sees the one still there.
    const after = await join('b1', 'after');
    expect((after.join.others as Array<{ identity: string }>).map((o) => o.identity)).toContain('fine');
  });
});

describe('native signalling: sessions', () => {
  it('resumes after an abrupt drop: the participant stays, its tracks keep their ids, missed events are replayed', async () => {
    expect((await api('POST', '/rooms', { name: 'r1' })).status).toBe(201);
    const a = await join('r1', 'alice');
    const b = await join('r1', 'bob');
    await b.client.publish();
    await a.client.wait(videoOf('bob'));
    const resumeToken = b.join.resumeToken as string;
    const lastSeq = b.client.lastSeq;
    b.client.drop();
    // While bob is away, carol joins and alice sends data: bob misses both.
    const c = await join('r1', 'carol');
    expect((c.join.others as Array<{ identity: string }>).map((o) => o.identity).sort()).toEqual([
      'alice',
      'bob',
    ]);
    await a.client.request({ type: 'data', payload: 'while away' });
    const listed = (await api('GET', '/rooms/r1/participants')).body as {
      participants: Array<{ identity: string; tracks: Array<{ id: string }> }>;
    };
    expect(
      listed.participants
        .find((p) => p.identity === 'bob')
        ?.tracks.map((t) => t.id)
        .sort(),
    ).toEqual(['bob-audio', 'bob-video']);

    const back = await RtcClient.connect(ts.url, await token('r1', 'bob'), { token: resumeToken, lastSeq });
    clients.push(back.client);
    expect(back.join).toMatchObject({ type: 'resumed', seq: 0 });
    const joined = await back.client.wait(ofType('participantJoined'));
    expect(joined.participant).toMatchObject({ identity: 'carol' });
    expect(joined.seq).toBe(lastSeq + 1);
    await back.client.wait(ofType('data', (m) => m.payload === 'while away'));
    expect(back.join.replayed).toBeGreaterThanOrEqual(2);
    // Nobody saw bob leave, and he is still a publisher with the same track ids.
    expect(a.client.received.some((m) => m.type === 'participantLeft')).toBe(false);
    expect(await back.client.request({ type: 'mute', trackId: 'bob-audio', muted: true })).toMatchObject({
      type: 'ok',
    });

    // A resume token that is unknown (or another identity's) gets a fresh join, marked.
    const stranger = await RtcClient.connect(ts.url, await token('r1', 'dave'), {
      token: resumeToken,
      lastSeq: 0,
    });
    clients.push(stranger.client);
    expect(stranger.join).toMatchObject({
      type: 'join',
      resumeFailed: true,
      participant: { identity: 'dave' },
    });
  });

  it('resends the full state on a resume when the missed messages were too many to keep', async () => {
    const a = await join('r2', 'alice');
    const b = await join('r2', 'bob');
    const resume = { token: b.join.resumeToken as string, lastSeq: b.client.lastSeq };
    b.client.drop();
    // 30 messages of 14,000 characters: more than a session keeps (256 KiB).
    for (let i = 0; i < 30; i++) a.client.socket.send({ type: 'data', payload: `${i}`.padEnd(14_000, '.') });
    await a.client.wait(ofType('ok', () => a.client.received.filter((m) => m.type === 'ok').length >= 30));
    const back = await RtcClient.connect(ts.url, await token('r2', 'bob'), resume);
    clients.push(back.client);
    expect(back.join).toMatchObject({ type: 'join', resumeFailed: false, participant: { identity: 'bob' } });
    expect((back.join.others as Array<{ identity: string }>).map((o) => o.identity)).toEqual(['alice']);
    expect(back.join.seq).toBeGreaterThan(resume.lastSeq + 30);
  });

  it('drops requests past the rate limit with rate_limited, and serves the session on', async () => {
    const a = await join('rl1', 'alice');
    for (let i = 0; i < 300; i++) a.client.socket.send({ type: 'ping', timestamp: i, requestId: `p${i}` });
    await a.client.wait(ofType('error', (m) => m.code === 'rate_limited'));
    await a.client.wait((m) => m.requestId === 'p299');
    const answered = a.client.received.filter((m) => m.type === 'pong').length;
    expect(answered).toBeGreaterThanOrEqual(100);
    expect(answered).toBeLessThan(300);
    await eventually(
      async () => (await a.client.request({ type: 'ping', timestamp: 1 })).type === 'pong',
      20_000,
      'a ping answered again',
    );
  });

  it(
    'drops a half-open socket that answers no ping, and lets the participant go when no resume came within the grace',
    { timeout: 120_000 },
    async () => {
      const watcher = await join('h1', 'watcher');
      // A client whose network vanished: its socket stays open but nothing answers pings.
      const ghost = await TestSocket.open(
        rtcUrl(ts.url, await token('h1', 'ghost')),
        {},
        { autoPong: false },
      );
      await ghost.next((t) => t.includes('"type":"join"'), 20_000);
      await watcher.client.wait(
        ofType('participantJoined', (m) => (m.participant as { identity: string }).identity === 'ghost'),
      );
      // Two ping intervals (15 s each) to be dropped, then the 20 s grace.
      const left = await watcher.client.wait(ofType('participantLeft'), 90_000);
      expect(left).toMatchObject({ identity: 'ghost', reason: 'disconnected (no resume in time)' });
      ghost.ws.terminate();
    },
  );

  it('replaces a duplicate identity (4409), and closes on removal (4403) and room deletion (4410)', async () => {
    expect((await api('POST', '/rooms', { name: 's1' })).status).toBe(201);
    const first = await join('s1', 'alice');
    const second = await join('s1', 'alice');
    expect(await first.client.socket.closed).toMatchObject({ code: 4409 });
    expect(first.client.received.at(-1)).toMatchObject({
      type: 'leave',
      closeCode: 4409,
      canReconnect: false,
    });
    expect((second.join.others as unknown[]).length).toBe(0);

    const bob = await join('s1', 'bob');
    expect(await api('DELETE', '/rooms/s1/participants/bob')).toEqual({ status: 204, body: undefined });
    expect(await bob.client.socket.closed).toMatchObject({
      code: 4403,
      reason: 'removed by the room service',
    });
    await second.client.wait(ofType('participantLeft', (m) => m.identity === 'bob'));

    expect((await api('DELETE', '/rooms/s1')).status).toBe(204);
    expect(await second.client.socket.closed).toMatchObject({ code: 4410 });
  });

  it('refuses a join past maxParticipants', async () => {
    expect((await api('POST', '/rooms', { name: 'cap1', maxParticipants: 1 })).status).toBe(201);
    await join('cap1', 'one');
    const two = await RtcClient.open(ts.url, await token('cap1', 'two'));
    clients.push(two);
    expect(await two.wait(ofType('error'))).toMatchObject({ code: 'capacity' });
    expect((await two.socket.closed).code).toBe(4503);
  });
});
