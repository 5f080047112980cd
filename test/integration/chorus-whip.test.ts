import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { WhepViewer, WhipPublisher } from '../../src/api/chorus/whip-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { untilStill } from '../fixtures/until-still.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { eventually } from '../fixtures/ws-client.js';

const KEY = 'whip-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';

let ts: TestServer;
let admin: string;
const clients: Array<{ close(): void }> = [];
const receiver = new WebhookReceiver(KEY, SECRET);
beforeAll(async () => {
  await receiver.start();
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`], webhookUrls: [`http://127.0.0.1:${receiver.port}/hook`] },
    // A vanished client's leg is reaped after 4 s of silence (the default is 15 s).
    webrtc: { bindAddress: '127.0.0.1', peerTimeoutSeconds: 4 },
  });
  admin = await token({ roomCreate: true, roomList: true, roomAdmin: true });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await ts.close();
  await receiver.stop();
});

function token(grants: Grants, room?: string, identity?: string): Promise<string> {
  return createAccessToken(KEY, SECRET, {
    grants,
    ttlSeconds: 300,
    ...(room ? { room } : {}),
    ...(identity ? { identity } : {}),
  });
}
const publishToken = (room: string, who: string) => token({ roomJoin: true, canPublish: true }, room, who);
const viewToken = (room: string, who: string) => token({ roomJoin: true, canSubscribe: true }, room, who);

async function createRoom(name: string): Promise<void> {
  const res = await fetch(`${ts.url}/chorus/v1/rooms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(res.status).toBe(201);
}

async function participants(room: string): Promise<Array<{ identity: string; tracks: unknown[] }>> {
  const res = await fetch(`${ts.url}/chorus/v1/rooms/${room}/participants`, {
    headers: { authorization: `Bearer ${admin}` },
  });
  return ((await res.json()) as { participants: Array<{ identity: string; tracks: unknown[] }> })
    .participants;
}

async function publisher(room: string, who: string): Promise<WhipPublisher> {
  const pub = new WhipPublisher(who);
  clients.push(pub);
  await pub.publish(`${ts.url}/chorus/v1/whip/${room}`, await publishToken(room, who));
  pub.start(400);
  return pub;
}

async function viewer(room: string, who: string, of: string): Promise<WhepViewer> {
  const v = new WhepViewer(who);
  clients.push(v);
  await v.view(`${ts.url}/chorus/v1/whep/${room}/${of}`, await viewToken(room, who));
  return v;
}

/** A POST to a WHIP/WHEP endpoint with a raw body; status, headers and body. */
async function post(
  path: string,
  body: string,
  opts: { token?: string; type?: string } = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(`${ts.url}/chorus/v1${path}`, {
    method: 'POST',
    headers: {
      'content-type': opts.type ?? 'application/sdp',
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
    },
    body,
  });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

describe('WHIP and WHEP', () => {
  it('a WHIP publisher is a participant whose VP8 and Opus packets reach a WHEP viewer; DELETE stops them', async () => {
    await createRoom('whip-a');
    const pub = await publisher('whip-a', 'cam');
    expect(pub.location).toMatch(new RegExp(`^${ts.url}/chorus/v1/whip/whip-a/[A-Za-z0-9_-]{22}$`));
    const listed = await participants('whip-a');
    expect(listed).toEqual([expect.objectContaining({ identity: 'cam' })]);
    expect(listed[0]!.tracks).toHaveLength(2);

    const v = await viewer('whip-a', 'watcher', 'cam');
    await eventually(() => v.video.packets > 50 && v.audio.packets > 20, 20_000, 'packets at the viewer');
    expect(v.video.lost).toBe(0);

    // A second viewer ends its own session: its media stops, the first viewer's goes on.
    const v2 = await viewer('whip-a', 'watcher2', 'cam');
    await eventually(() => v2.video.packets > 20, 20_000, 'packets at the second viewer');
    expect(await v2.delete(await viewToken('whip-a', 'watcher2'))).toBe(200);
    await untilStill(() => v2.packets, 'media to stop at the second viewer');
    const before = v.packets;
    await eventually(() => v.packets > before + 50, 20_000, 'the first viewer still receiving');
    expect(await v2.delete(await viewToken('whip-a', 'watcher2'))).toBe(404);

    // DELETE of the publish: the publisher leaves, the viewer's media stops.
    expect(await pub.delete(await publishToken('whip-a', 'cam'))).toBe(200);
    await untilStill(() => v.packets, 'media to stop at the viewer');
    await eventually(async () => (await participants('whip-a')).length === 0, 10_000, 'the room to empty');
    expect(await pub.delete(await publishToken('whip-a', 'cam'))).toBe(404);
    // Webhooks fired for the WHIP publisher as for any participant.
    await eventually(
      () => receiver.of('whip-a').includes('participant_left:cam'),
      20_000,
      'cam left (webhook)',
    );
    const cam = receiver.of('whip-a').filter((e) => e.includes(':cam'));
    expect(cam[0]).toBe('participant_joined:cam');
    expect(cam.slice(1, 3).sort()).toEqual(['track_published:cam:audio', 'track_published:cam:video']);
    expect(cam.slice(3, 5).sort()).toEqual(['track_unpublished:cam:audio', 'track_unpublished:cam:video']);
    expect(cam.at(-1)).toBe('participant_left:cam');
    // Nobody publishes as cam now: a view is refused.
    const late = new WhepViewer('late');
    clients.push(late);
    await expect(
      late.view(`${ts.url}/chorus/v1/whep/whip-a/cam`, await viewToken('whip-a', 'late')),
    ).rejects.toMatchObject({ status: 404 });
  }, 120_000);

  it('closing the room through the room service ends its WHIP session', async () => {
    await createRoom('whip-close');
    const pub = await publisher('whip-close', 'cam');
    const v = await viewer('whip-close', 'w', 'cam');
    await eventually(() => v.video.packets > 20, 20_000, 'packets at the viewer');
    const res = await fetch(`${ts.url}/chorus/v1/rooms/whip-close`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(res.status).toBe(204);
    await untilStill(() => v.packets, 'media to stop at the viewer');
    expect(await pub.delete(admin)).toBe(404);
  }, 120_000);

  it('refuses missing, bad, expired and under-privileged tokens with 401/403 and the native body', async () => {
    await createRoom('whip-auth');
    const offer = OFFER;
    const refusal = (code: string, message: RegExp) => ({
      error: { code, message: expect.stringMatching(message) },
    });
    const expectRefusal = async (
      r: Promise<{ status: number; body: string }>,
      status: number,
      code: string,
      message: RegExp,
    ) => {
      const got = await r;
      expect({ status: got.status, body: JSON.parse(got.body) as unknown }).toEqual({
        status,
        body: refusal(code, message),
      });
    };
    await expectRefusal(post('/whip/whip-auth', offer), 401, 'unauthenticated', /missing Authorization/);
    await expectRefusal(
      post('/whip/whip-auth', offer, { token: 'nope' }),
      401,
      'unauthenticated',
      /malformed/,
    );
    const expired = await new SignJWT({ room: 'whip-auth', grants: { roomJoin: true, canPublish: true } })
      .setProtectedHeader({ alg: 'HS256', kid: KEY })
      .setSubject('cam')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 120)
      .sign(new TextEncoder().encode(SECRET));
    await expectRefusal(
      post('/whip/whip-auth', offer, { token: expired }),
      401,
      'unauthenticated',
      /expired/,
    );
    await expectRefusal(
      post('/whip/whip-auth', offer, { token: await viewToken('whip-auth', 'cam') }),
      403,
      'forbidden',
      /canPublish/,
    );
    await expectRefusal(
      post('/whip/whip-auth', offer, { token: await publishToken('other-room', 'cam') }),
      403,
      'forbidden',
      /for room other-room/,
    );
    await expectRefusal(
      post('/whep/whip-auth/cam', offer, { token: await publishToken('whip-auth', 'v') }),
      403,
      'forbidden',
      /canSubscribe/,
    );
    await expectRefusal(
      post('/whip/whip-auth', offer, {
        token: await token({ roomJoin: true, canPublish: true }, 'whip-auth'),
      }),
      403,
      'forbidden',
      /no identity/,
    );
    // A token whose sources leave out the camera may not send video.
    const audioOnly = await token(
      { roomJoin: true, canPublish: true, canPublishSources: ['microphone'] },
      'whip-auth',
      'mic',
    );
    const pub = new WhipPublisher('mic');
    clients.push(pub);
    await expect(pub.publish(`${ts.url}/chorus/v1/whip/whip-auth`, audioOnly)).rejects.toMatchObject({
      status: 403,
      body: expect.stringMatching(/does not cover camera/) as unknown,
    });
    // Ending another's session needs a token of that room.
    await createRoom('whip-auth2');
    const cam = await publisher('whip-auth2', 'cam');
    const res = await fetch(cam.location, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await publishToken('whip-auth', 'cam')}` },
    });
    expect(res.status).toBe(403);
    // A token of the room with another identity does not end it either (not theirs: 404).
    const other = await fetch(cam.location, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await publishToken('whip-auth2', 'someone-else')}` },
    });
    expect(other.status).toBe(404);
    expect(await participants('whip-auth2')).toHaveLength(1);
    expect(await cam.delete(await publishToken('whip-auth2', 'cam'))).toBe(200);
  });

  it('refuses wrong content types (415), malformed SDP (400), unknown rooms (404), oversize offers (413)', async () => {
    await createRoom('whip-bad');
    const t = await publishToken('whip-bad', 'cam');
    const status = async (r: Promise<{ status: number; body: string }>) => {
      const got = await r;
      return { status: got.status, code: (JSON.parse(got.body) as { error: { code: string } }).error.code };
    };
    expect(await status(post('/whip/whip-bad', OFFER, { token: t, type: 'text/plain' }))).toEqual({
      status: 415,
      code: 'invalid_argument',
    });
    expect(
      await status(post('/whip/whip-bad', '{"sdp":"v=0"}', { token: t, type: 'application/json' })),
    ).toEqual({ status: 415, code: 'invalid_argument' });
    expect(await status(post('/whip/whip-bad', 'not sdp at all', { token: t }))).toEqual({
      status: 400,
      code: 'invalid_sdp',
    });
    expect(
      await status(post('/whip/whip-bad', `${OFFER}m=video 9 UDP/TLS/RTP/SAVPF 96\r\n`, { token: t })),
    ).toEqual({
      status: 400,
      code: 'invalid_sdp',
    });
    expect(await status(post('/whip/whip-bad', OFFER + 'a=x\r\n'.repeat(20_000), { token: t }))).toEqual({
      status: 413,
      code: 'too_large',
    });
    expect(
      await status(post('/whip/no-such-room', OFFER, { token: await publishToken('no-such-room', 'cam') })),
    ).toEqual({
      status: 404,
      code: 'not_found',
    });
    expect(await status(post('/whip/bad%20room', OFFER, { token: t }))).toEqual({
      status: 400,
      code: 'invalid_argument',
    });
    // Nobody publishes as ghost: a view of them is 404.
    const v = new WhepViewer('v');
    clients.push(v);
    await expect(
      v.view(`${ts.url}/chorus/v1/whep/whip-bad/ghost`, await viewToken('whip-bad', 'v')),
    ).rejects.toMatchObject({ status: 404 });
    // Session routes: a malformed id is 400, an unknown one 404 (DELETE and PATCH).
    const del = async (path: string) =>
      (
        await fetch(`${ts.url}/chorus/v1${path}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${t}` },
        })
      ).status;
    expect(await del('/whip/whip-bad/short')).toBe(400);
    expect(await del('/whip/whip-bad/AAAAAAAAAAAAAAAAAAAAAA')).toBe(404);
    const patch = await fetch(`${ts.url}/chorus/v1/whip/whip-bad/AAAAAAAAAAAAAAAAAAAAAA`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${t}`, 'content-type': 'application/trickle-ice-sdpfrag' },
      body: 'a=ice-ufrag:x\r\na=ice-pwd:y\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n',
    });
    expect(patch.status).toBe(404);
  });

  it('a client that vanishes without DELETE ends its session (viewer first, then publisher)', async () => {
    await createRoom('whip-gone');
    const pub = await publisher('whip-gone', 'cam');
    const v = await viewer('whip-gone', 'w', 'cam');
    await eventually(() => v.video.packets > 20, 20_000, 'packets at the viewer');
    const viewerToken = await viewToken('whip-gone', 'w');
    v.close();
    await eventually(
      async () => (await participants('whip-gone')).every((p) => p.identity !== 'w'),
      30_000,
      'the vanished viewer to leave',
    );
    expect(await v.delete(viewerToken)).toBe(404);
    pub.close();
    await eventually(
      async () => (await participants('whip-gone')).length === 0,
      30_000,
      'the publisher to leave',
    );
    expect(await pub.delete(await publishToken('whip-gone', 'cam'))).toBe(404);
  }, 120_000);

  it("refuses a join past the room's maxParticipants (503 capacity)", async () => {
    const res = await fetch(`${ts.url}/chorus/v1/rooms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'whip-small', maxParticipants: 1 }),
    });
    expect(res.status).toBe(201);
    await publisher('whip-small', 'cam');
    const v = new WhepViewer('extra');
    clients.push(v);
    await expect(
      v.view(`${ts.url}/chorus/v1/whep/whip-small/cam`, await viewToken('whip-small', 'extra')),
    ).rejects.toMatchObject({
      status: 503,
      body: expect.stringMatching(/"capacity".*is full \(1\)/) as unknown,
    });
    // The one already in may publish again (a republish replaces its session).
    const again = new WhipPublisher('cam');
    clients.push(again);
    await again.publish(`${ts.url}/chorus/v1/whip/whip-small`, await publishToken('whip-small', 'cam'));
    expect(await participants('whip-small')).toHaveLength(1);
  }, 120_000);

  it('answers CORS preflights and lists WHIP/WHEP in the OpenAPI document', async () => {
    const res = await fetch(`${ts.url}/chorus/v1/whip/any-room`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('accept-post')).toBe('application/sdp');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/location/);
    const spec = (await (await fetch(`${ts.url}/chorus/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(spec.paths['/chorus/v1/whip/{room}']!)).toEqual(['post']);
    expect(Object.keys(spec.paths['/chorus/v1/whep/{room}/{identity}']!)).toEqual(['post']);
    expect(spec.paths['/chorus/v1/whip/{room}/{session}']).toHaveProperty('delete');
    expect(spec.paths['/chorus/v1/rooms']).toHaveProperty('post');
  });

  it('drops malformed bus messages to a session and keeps the session', async () => {
    await createRoom('whip-bus');
    const pub = await publisher('whip-bus', 'cam');
    const id = pub.location.split('/').pop()!;
    const bus = ts.server.engine.ports.bus;
    for (const junk of ['not json', '{"room":1}', JSON.stringify({ room: 'whip-bus', kind: 'other' })])
      await expect(bus.request(`chorus.native.session.${id}`, junk, { timeoutMs: 300 })).rejects.toThrow();
    // A well-formed question naming another room does not end it.
    const wrong = new TextDecoder().decode(
      await bus.request(`chorus.native.session.${id}`, JSON.stringify({ room: 'x', kind: 'whip' })),
    );
    expect(JSON.parse(wrong)).toEqual({ ended: false });
    expect(await participants('whip-bus')).toHaveLength(1);
    expect(await pub.delete(await publishToken('whip-bus', 'cam'))).toBe(200);
  });
});
