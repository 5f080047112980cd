import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { WhepViewer, WhipPublisher } from '../../src/api/chorus/whip-client.js';
import { chorusApi } from '../fixtures/rtc-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { whipTrickle } from '../fixtures/whip-trickle.js';
import { eventually } from '../fixtures/ws-client.js';

// WHIP/WHEP trickle ICE (RFC 9725 4.3.1): offers without candidates, candidates PATCHed.

const KEY = 'whip-trickle-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const FRAG = 'application/trickle-ice-sdpfrag';

let ts: TestServer;
const clients: Array<{ close(): void }> = [];
beforeAll(async () => {
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`] },
    webrtc: { bindAddress: '127.0.0.1' },
  });
  const admin = await token({ roomCreate: true, roomAdmin: true });
  for (const name of ['wt-media', 'wt-bad'])
    expect((await chorusApi(ts.url, admin, 'POST', '/rooms', { name })).status).toBe(201);
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await ts.close();
});

function token(grants: Grants, room?: string, identity?: string): Promise<string> {
  return createAccessToken(KEY, SECRET, {
    grants,
    ttlSeconds: 300,
    ...(room ? { room } : {}),
    ...(identity ? { identity } : {}),
  });
}

async function patch(
  location: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(location, { method: 'PATCH', headers, body });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

const candidate = (port: number): string => `a=candidate:1 1 udp 2122260223 127.0.0.1 ${port} typ host`;
const fragment = (ufrag: string, ...lines: string[]): string =>
  [
    `a=ice-ufrag:${ufrag}`,
    'a=ice-pwd:abcdefghijklmnopqrstuvwx',
    'm=audio 9 UDP/TLS/RTP/SAVPF 0',
    'a=mid:0',
    ...lines,
    '',
  ].join('\r\n');

describe('WHIP and WHEP trickle ICE (PATCH)', () => {
  it('a WHIP publisher and a WHEP viewer that offer no candidates connect through PATCHed ones, even when they cannot check the server', async () => {
    const pubToken = await token({ roomJoin: true, canPublish: true }, 'wt-media', 'cam');
    const pub = new WhipPublisher('cam');
    clients.push(pub);
    const pubPatches = await whipTrickle(pub, `${ts.url}/chorus/v1/whip/wt-media`, pubToken, {
      answerCandidates: false,
    });
    expect(pubPatches.length).toBeGreaterThan(1);
    expect(pubPatches.map((p) => p.status)).toEqual(pubPatches.map(() => 204));
    pub.start(400);

    const viewer = new WhepViewer('eye');
    clients.push(viewer);
    const viewToken = await token({ roomJoin: true, canSubscribe: true }, 'wt-media', 'eye');
    const viewPatches = await whipTrickle(viewer, `${ts.url}/chorus/v1/whep/wt-media/cam`, viewToken, {
      answerCandidates: false,
    });
    expect(viewPatches.map((p) => p.status)).toEqual(viewPatches.map(() => 204));
    await eventually(
      () => viewer.video.packets > 50 && viewer.audio.packets > 20,
      60_000,
      () =>
        `the viewer receives the publisher (video ${viewer.video.packets}, audio ${viewer.audio.packets})`,
    );
  }, 120_000);

  it('refuses a wrong ETag (412), another content type (415), an unknown session (404), a malformed fragment (400) and an ICE restart (422)', async () => {
    const pubToken = await token({ roomJoin: true, canPublish: true }, 'wt-bad', 'pub');
    const pub = new WhipPublisher('pub');
    clients.push(pub);
    await pub.publish(`${ts.url}/chorus/v1/whip/wt-bad`, pubToken);
    const id = pub.location.split('/').pop()!;
    const auth = { authorization: `Bearer ${pubToken}` };
    const ufrag = /^a=ice-ufrag:(\S+)/m.exec(pub.pc.localDescription()!.sdp)![1]!;
    const ok = { ...auth, 'content-type': FRAG, 'if-match': `"${id}"` };

    const good = await patch(pub.location, fragment(ufrag, candidate(40000)), ok);
    expect(good.status).toBe(204);
    expect(good.headers.get('etag')).toBe(`"${id}"`);
    // Without If-Match (some clients send none) it is taken too.
    expect(
      (await patch(pub.location, fragment(ufrag, candidate(40001)), { ...auth, 'content-type': FRAG }))
        .status,
    ).toBe(204);

    const wrongTag = await patch(pub.location, fragment(ufrag, candidate(40002)), {
      ...ok,
      'if-match': '"AAAAAAAAAAAAAAAAAAAAAA"',
    });
    expect(wrongTag.status).toBe(412);
    expect(JSON.parse(wrongTag.body)).toMatchObject({ error: { code: 'invalid_argument' } });
    expect(
      (
        await patch(pub.location, fragment(ufrag, candidate(40003)), {
          ...ok,
          'content-type': 'application/sdp',
        })
      ).status,
    ).toBe(415);
    expect(
      (
        await patch(pub.location, 'candidate:1 1 udp 1 127.0.0.1 9 typ host', {
          ...ok,
          'content-type': 'text/plain',
        })
      ).status,
    ).toBe(415);
    const unknown = pub.location.replace(id, 'AAAAAAAAAAAAAAAAAAAAAA');
    expect(
      (
        await patch(unknown, fragment(ufrag, candidate(40004)), {
          ...ok,
          'if-match': '"AAAAAAAAAAAAAAAAAAAAAA"',
        })
      ).status,
    ).toBe(404);
    for (const bad of [
      fragment(ufrag, 'a=candidate:this is not one'),
      fragment(ufrag, `${candidate(40005)}\r\nnot an sdp line`),
      fragment('bad ufrag!', candidate(40006)),
    ]) {
      const r = await patch(pub.location, bad, ok);
      expect(r.status, bad).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'invalid_argument' } });
    }
    // An ICE restart: If-Match * (RFC 9725 4.3.2), or other credentials than the offer's.
    expect(
      (await patch(pub.location, fragment('newufrag', candidate(40007)), { ...ok, 'if-match': '*' })).status,
    ).toBe(422);
    expect((await patch(pub.location, fragment('newufrag', candidate(40008)), ok)).status).toBe(422);
    // No token: 401; another identity's token of the room: 404 (not theirs to see).
    expect(
      (await patch(pub.location, fragment(ufrag, candidate(40009)), { 'content-type': FRAG })).status,
    ).toBe(401);
    const other = await token({ roomJoin: true, canPublish: true }, 'wt-bad', 'someone-else');
    expect(
      (
        await patch(pub.location, fragment(ufrag, candidate(40010)), {
          ...ok,
          authorization: `Bearer ${other}`,
        })
      ).status,
    ).toBe(404);
    // Past 64 candidates a leg: 400 (the two above counted).
    let status = 204;
    for (let i = 0; i < 70 && status === 204; i++)
      status = (await patch(pub.location, fragment(ufrag, candidate(41000 + i)), ok)).status;
    expect(status).toBe(400);

    // What a session resource takes, for CORS and for clients that ask first.
    const opts = await fetch(pub.location, { method: 'OPTIONS' });
    expect(opts.status).toBe(204);
    expect(opts.headers.get('accept-patch')).toBe(FRAG);
    expect(opts.headers.get('allow')).toBe('PATCH, DELETE, OPTIONS');
    expect(opts.headers.get('access-control-allow-methods')).toMatch(/PATCH/);
    expect(opts.headers.get('access-control-allow-headers')).toMatch(/if-match/);
  }, 120_000);
});
