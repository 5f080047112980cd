import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NdcPublisher, exchange } from '../fixtures/ndc-peer.js';

let t: TestServer;
let dataDir: string;

/**
 * The room and SDP routes are plain REST: driven through inject, no socket. The answer
 * keeps fetch's shape (`status`, `json()`), so the checks read as before.
 */
async function call(method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: string) {
  const res = await t.server.app.inject({
    method,
    url,
    ...(payload === undefined ? {} : { headers: { 'content-type': 'application/json' }, payload }),
  });
  return { status: res.statusCode, json: (): unknown => res.json() };
}
const get = (url: string) => call('GET', url);
const put = (body: unknown, prefix = '') => call('PUT', `${prefix}/webrtc/room`, JSON.stringify(body));
const del = (id: string, body: unknown) => call('DELETE', `/webrtc/room/${id}`, JSON.stringify(body));
const sdpPost = (path: string, body: string) => call('POST', path, body);
/** Servers here are driven through inject. */
const config = async () => ({
  webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
});
const b64 = (o: unknown, gz = false) => {
  const raw = Buffer.from(JSON.stringify(o));
  return (gz ? gzipSync(raw) : raw).toString('base64');
};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'chorus-bluesky-'));
  t = await startTestServer(await config(), { dataDir });
});
afterAll(async () => {
  await t.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('rooms', () => {
  it('lists [] when there are none, creates unique rooms (201), lists them, also under /api', async () => {
    expect(await (await get('/webrtc/room')).json()).toEqual([]);
    const a = await put({ user_id: 'admin-a' });
    expect(a.status).toBe(201);
    const { id: ida } = (await a.json()) as { id: string };
    const { id: idb } = (await (await put({ user_id: 'admin-b' }, '/api')).json()) as { id: string };
    expect(ida).not.toBe(idb);
    expect(((await (await get('/api/webrtc/room')).json()) as string[]).sort()).toEqual([ida, idb].sort());
    expect(await (await get(`/webrtc/room/${ida}`)).json()).toEqual({
      id: ida,
      admin: 'admin-a',
      publishers: [],
    });
  });

  it('refuses a room without a valid user_id', async () => {
    for (const body of [{}, { user_id: '' }, { user_id: 42 }, { user_id: 'has space' }]) {
      const res = await put(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/user_id/);
    }
    const malformed = await call('PUT', '/webrtc/room', '{"user_id":');
    expect(malformed.status).toBe(400);
  });

  it('closes a room for its admin only: 403 for others, 404 when unknown, 204 and gone after', async () => {
    const { id } = (await (await put({ user_id: 'owner' })).json()) as { id: string };
    const pub = new NdcPublisher();
    try {
      expect((await pub.publish(t.url, id, 'owner')).status).toBe(200);
      pub.start();
      expect((await del(id, { user_id: 'intruder' })).status).toBe(403);
      expect((await del('nope', { user_id: 'owner' })).status).toBe(404);
      const before = t.server.engine.sfu.stats().publishers;
      expect((await del(id, { user_id: 'owner' })).status).toBe(204);
      // Every peer in it is closed; it is no longer listed nor usable.
      expect(t.server.engine.sfu.stats().publishers).toBe(before - 1);
      expect(await (await get('/webrtc/room')).json()).not.toContain(id);
      expect((await del(id, { user_id: 'owner' })).status).toBe(404);
      const late = await exchange(t.url, `/webrtc/sdp/m/${id}/c/x/p/x/s/true`, 'v=0\r\n');
      expect(late).toEqual({ status: 404, error: `room not found: ${id}` });
    } finally {
      pub.close();
    }
  });

  it('keeps rooms across a restart', async () => {
    const { id } = (await (await put({ user_id: 'keeper' })).json()) as { id: string };
    await t.close();
    t = await startTestServer(await config(), { dataDir });
    expect(await (await get('/webrtc/room')).json()).toContain(id);
    expect(((await (await get(`/webrtc/room/${id}`)).json()) as { admin: string }).admin).toBe('keeper');
  });
});

describe('SDP exchange: bad requests', () => {
  let room: string;
  beforeAll(async () => {
    room = ((await (await put({ user_id: 'sdp-admin' })).json()) as { id: string }).id;
  });
  const path = (user: string, peer: string, sender: string) =>
    `/webrtc/sdp/m/${room}/c/${user}/p/${peer}/s/${sender}`;

  it('404 for an unknown meeting', async () => {
    const res = await sdpPost(
      '/webrtc/sdp/m/unknown-room/c/a/p/a/s/true',
      JSON.stringify({ sdp: b64({ type: 'offer', sdp: 'v=0' }) }),
    );
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'room not found: unknown-room' });
  });

  it('400 for bodies that are not the signal encoding', async () => {
    const cases = [
      '{"sdp":',
      JSON.stringify({}),
      JSON.stringify({ sdp: '!!!not base64!!!' }),
      JSON.stringify({ sdp: Buffer.from('not json').toString('base64') }),
      JSON.stringify({ sdp: b64({ type: 'offer' }) }),
      JSON.stringify({ sdp: b64({ type: 'answer', sdp: 'v=0' }) }),
    ];
    for (const body of cases) {
      const res = await sdpPost(path('u', 'u', 'true'), body);
      expect(res.status, body).toBe(400);
      expect(typeof ((await res.json()) as { error: unknown }).error).toBe('string');
    }
  });

  it('400 for malformed SDP and for SDP with no usable codec, gzipped or not', async () => {
    const garbage = await sdpPost(
      path('u', 'u', 'true'),
      JSON.stringify({ sdp: b64({ type: 'offer', sdp: 'hello' }, true) }),
    );
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { error: string }).error).toMatch(/not an SDP/);
    const h265 = [
      'v=0',
      'o=- 1 1 IN IP4 127.0.0.1',
      's=-',
      't=0 0',
      'a=group:BUNDLE 0',
      'm=video 9 UDP/TLS/RTP/SAVPF 100',
      'c=IN IP4 0.0.0.0',
      'a=mid:0',
      'a=sendonly',
      'a=rtcp-mux',
      'a=rtpmap:100 H265/90000',
      'a=setup:actpass',
      'a=ice-ufrag:abcd',
      'a=ice-pwd:abcdefghijklmnopqrstuvwx',
      'a=fingerprint:sha-256 ' + Array(32).fill('AA').join(':'),
      '',
    ].join('\r\n');
    const res = await sdpPost(
      path('u', 'u', 'true'),
      JSON.stringify({ sdp: b64({ type: 'offer', sdp: h265 }) }),
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/no.*codec|nothing Chorus forwards/i);
  });

  it('404 for a receiver asking for a peer that does not publish', async () => {
    const pub = new NdcPublisher();
    try {
      // A well-formed receiving offer, for a peer nobody publishes as.
      const r = await exchange(t.url, path('viewer', 'ghost', 'false'), await offerOf(pub));
      expect(r.status).toBe(404);
      expect(r.error).toMatch(/ghost is not publishing/);
    } finally {
      pub.close();
    }
  });

  it('accepts the plain {type, sdp} body and answers in kind; the server keeps serving', async () => {
    const pub = new NdcPublisher();
    try {
      const offer = await offerOf(pub);
      const res = await sdpPost(
        path('plain-user', 'plain-user', 'true'),
        JSON.stringify({ type: 'offer', sdp: offer }),
      );
      expect(res.status).toBe(200);
      const answer = (await res.json()) as { type: string; sdp: string };
      expect(answer.type).toBe('answer');
      expect(answer.sdp).toMatch(/^v=0/);
      expect((await get('/healthz')).status).toBe(200);
    } finally {
      pub.close();
    }
  });
});

/** A publisher's offer, gathered, without sending it anywhere. */
function offerOf(pub: NdcPublisher): Promise<string> {
  return new Promise((resolve) => {
    pub.pc.onGatheringStateChange((s) => {
      if (s === 'complete') resolve(pub.pc.localDescription()!.sdp);
    });
    pub.pc.setLocalDescription();
  });
}
