import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually, within } from '../fixtures/ws-client.js';

let t: TestServer;
const ADMIN = 'admin-token-0123456789';

/** Registration and the other plain REST routes need no socket: they go through inject. */
const INJECTED = {};

async function register(
  server: TestServer,
  username: unknown,
  headers: Record<string, string> = {},
  prefix = '',
) {
  const res = await server.server.app.inject({
    method: 'POST',
    url: `${prefix}/v1/register`,
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify({ username }),
  });
  const header = res.headers['set-cookie'];
  const all = Array.isArray(header) ? header : header ? [header] : [];
  const setCookie = all[0] ?? '';
  const cookie = setCookie.split(';')[0] ?? '';
  return {
    status: res.statusCode,
    body: res.json<{ status: string; message: string }>(),
    cookie,
    setCookie,
    /** The script-readable name cookie's Set-Cookie line. */
    nameCookie: all[1] ?? '',
  };
}

const get = (server: TestServer, url: string, headers: Record<string, string> = {}) =>
  server.server.app.inject({ method: 'GET', url, headers });

async function connect(cookie: string): Promise<TestSocket> {
  return TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
}

beforeAll(async () => {
  t = await startTestServer({
    ...INJECTED,
    admin: { token: ADMIN },
    signal: { rateLimitPerSecond: 20, rateLimitBurst: 10 },
  });
});
afterAll(async () => {
  await t.close();
});

describe('POST /v1/register', () => {
  it('registers a new name and sets a signed, HttpOnly, SameSite=Lax session cookie and the bare name for scripts', async () => {
    const r = await register(t, 'reg-alice');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'SUCCESS', message: '' });
    expect(r.nameCookie).toMatch(/^user_username=reg-alice;/);
    expect(r.nameCookie).not.toMatch(/HttpOnly/);
    expect(r.setCookie).toMatch(/^chorus_session=reg-alice\.[^;]+;/);
    expect(r.setCookie).toMatch(/HttpOnly/);
    expect(r.setCookie).toMatch(/SameSite=Lax/);
    expect(r.setCookie).toMatch(/Path=\//);
    expect(r.setCookie).not.toMatch(/Secure/);
  });

  it('answers 200 TAKEN (as the original) to someone else, and SUCCESS to the holder registering again', async () => {
    const first = await register(t, 'reg-bob');
    const other = await register(t, 'reg-bob');
    expect(other.status).toBe(200);
    expect(other.body).toEqual({ status: 'TAKEN', message: '' });
    expect(other.cookie).toBe('');
    const again = await register(t, 'reg-bob', { cookie: first.cookie });
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('SUCCESS');
  });

  it('rejects empty, too long and badly formed names with a clear 400', async () => {
    expect((await register(t, '')).body).toEqual({
      status: 'INVALID',
      message: 'username cannot be empty',
    });
    expect((await register(t, undefined)).status).toBe(400);
    const long = await register(t, 'x'.repeat(33));
    expect(long.status).toBe(400);
    expect(long.body.message).toMatch(/at most 32/);
    const bad = await register(t, 'al ice<script>');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/letters, digits/);
    expect((await register(t, 42)).status).toBe(400);
  });

  it('answers malformed JSON, a wrong content type and an oversize body with the original 400 body', async () => {
    const malformed = await fetch(`${t.url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":',
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ status: 'INVALID', message: 'invalid body' });
    const wrongType = await fetch(`${t.url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'alice',
    });
    expect(wrongType.status).toBe(400);
    expect(await wrongType.json()).toEqual({ status: 'INVALID', message: 'invalid body' });
    const huge = await fetch(`${t.url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'x'.repeat(2 << 20) }),
    });
    expect(huge.status).toBe(413);
    // The server still serves, and nothing stored was lost.
    expect((await register(t, 'reg-bob')).body.status).toBe('TAKEN');
  });

  it('is also served under /api for the original web app', async () => {
    const r = await register(t, 'reg-api', {}, '/api');
    expect(r.status).toBe(200);
    const user = await get(t, '/api/v1/user', { cookie: r.cookie });
    expect(user.statusCode).toBe(200);
  });
});

describe('GET /v1/user', () => {
  it('is 200 OK for a valid session', async () => {
    const r = await register(t, 'user-ok');
    const res = await get(t, '/v1/user', { cookie: r.cookie });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('OK');
  });

  it('is 401 (as the original) and clears both cookies without a session, or with a forged one', async () => {
    for (const cookie of [
      '',
      'user_username=user-ok',
      'user_username=user-ok.forgedsignature',
      'chorus_session=user-ok.forgedsignature; user_username=user-ok',
      'chorus_session=user-ok',
      'user_username=',
    ]) {
      const res = await get(t, '/v1/user', cookie ? { cookie } : {});
      expect(res.statusCode).toBe(401);
      expect(res.body).toBe('Unauthorized');
      expect(res.headers['clear-site-data']).toBe('"cookies"');
      const cleared = String(res.headers['set-cookie']);
      expect(cleared).toMatch(/chorus_session=;.*Expires=Thu, 01 Jan 1970/);
      expect(cleared).toMatch(/user_username=;.*Expires=Thu, 01 Jan 1970/);
    }
  });

  it('accepts a session from before the split (user_username=<name>.<signature>) and sets both cookies', async () => {
    const r = await register(t, 'user-old');
    const oldCookie = r.cookie.replace(/^chorus_session=/, 'user_username=');
    const res = await get(t, '/v1/user', { cookie: oldCookie });
    expect(res.statusCode).toBe(200);
    const set = String(res.headers['set-cookie']);
    expect(set).toContain(r.cookie);
    expect(set).toMatch(/user_username=user-old;/);
    // The socket accepts it too: a message to no one is answered, not closed with 4000.
    const s = await connect(oldCookie);
    s.send({ target: 'nobody-here', type: 'x' });
    expect(await s.next()).toContain('TARGET_NOT_FOUND');
    s.close();
  });

  it('answers /healthcheck with the original body', async () => {
    expect((await get(t, '/healthcheck')).body).toBe('success');
  });
});

describe('GET /v1/connect', () => {
  it('forwards {target,type,payload} as {originator,target,type,payload}, in that key order', async () => {
    const a = await register(t, 'fw-alice');
    const b = await register(t, 'fw-bob');
    const sa = await connect(a.cookie);
    const sb = await connect(b.cookie);
    const payload = { type: 'offer', sdp: 'v=0\r\n', nested: [1, 2, { x: null }] };
    sa.send({ target: 'fw-bob', type: 'video-offer', payload });
    const got = await sb.next();
    expect(got).toBe(
      JSON.stringify({ originator: 'fw-alice', target: 'fw-bob', type: 'video-offer', payload }),
    );
    sb.send({ target: 'fw-alice', type: 'ice-candidate' });
    expect(JSON.parse(await sa.next())).toEqual({
      originator: 'fw-bob',
      target: 'fw-alice',
      type: 'ice-candidate',
      payload: null,
    });
    sa.close();
    sb.close();
  });

  it('keeps messages in order', async () => {
    const a = await register(t, 'ord-a');
    const b = await register(t, 'ord-b');
    const sa = await connect(a.cookie);
    const sb = await connect(b.cookie);
    for (let i = 0; i < 10; i++) sa.send({ target: 'ord-b', type: 'n', payload: i });
    await eventually(() => sb.messages.length === 10);
    expect(sb.messages.map((m) => (JSON.parse(m) as { payload: number }).payload)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    sa.close();
    sb.close();
  });

  it('tells the sender TARGET_NOT_FOUND for an unknown or offline target', async () => {
    const a = await register(t, 'nf-alice');
    await register(t, 'nf-offline');
    const sa = await connect(a.cookie);
    sa.send({ target: 'nobody-here', type: 'x', payload: 1 });
    expect(await sa.next()).toBe('{"target":"","type":"TARGET_NOT_FOUND","payload":null}');
    sa.send({ target: 'nf-offline', type: 'x', payload: 1 });
    await eventually(() => sa.messages.length === 2);
    expect(sa.messages[1]).toBe('{"target":"","type":"TARGET_NOT_FOUND","payload":null}');
    sa.close();
  });

  it('closes with 4000 UNAUTHENTICATED without a registered identity', async () => {
    for (const cookie of [
      '',
      'user_username=fw-alice',
      'user_username=ghost.c2lnbmF0dXJl',
      'chorus_session=ghost.c2lnbmF0dXJl',
    ]) {
      const s = await connect(cookie);
      expect(await s.closed).toEqual({ code: 4000, reason: 'UNAUTHENTICATED' });
    }
  });

  it('replaces an older connection of the same user (4001 REPLACED), so a refresh never locks a user out', async () => {
    const a = await register(t, 'rep-alice');
    const b = await register(t, 'rep-bob');
    const first = await connect(a.cookie);
    const second = await connect(a.cookie);
    expect(await first.closed).toEqual({ code: 4001, reason: 'REPLACED' });
    const sb = await connect(b.cookie);
    sb.send({ target: 'rep-alice', type: 'hi' });
    expect(JSON.parse(await second.next()).type).toBe('hi');
    second.close();
    sb.close();
  });

  it('answers malformed JSON, missing fields and binary frames with INVALID_MESSAGE and keeps the socket', async () => {
    const a = await register(t, 'bad-alice');
    const s = await connect(a.cookie);
    s.send('{not json');
    s.send('[1,2]');
    s.send({ type: 'x' });
    s.send({ target: 'bad-alice' });
    s.ws.send(Buffer.from([1, 2, 3]));
    await eventually(() => s.messages.length === 5);
    const replies = s.messages.map((m) => JSON.parse(m) as { type: string; payload: string });
    expect(replies.every((r) => r.type === 'INVALID_MESSAGE')).toBe(true);
    expect(replies.map((r) => r.payload)).toEqual([
      'malformed JSON',
      'expected a JSON object',
      'target must be a non-empty string',
      'type must be a string',
      'binary frames are not accepted; send JSON text',
    ]);
    s.send({ target: 'bad-alice', type: 'self', payload: 'still here' });
    expect(JSON.parse(await s.next((m) => m.includes('still here'))).originator).toBe('bad-alice');
    s.close();
  });

  it('refuses a payload nested 20,000 deep with INVALID_MESSAGE, and the process keeps serving', async () => {
    const a = await register(t, 'deep-alice');
    const b = await register(t, 'deep-bob');
    const s = await connect(a.cookie);
    const sb = await connect(b.cookie);
    // Under the 64 KiB frame limit, but JSON.stringify of it overflows the stack.
    s.send(`{"target":"deep-bob","type":"x","payload":${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
    const reply = JSON.parse(await s.next()) as { type: string; payload: string };
    expect(reply).toEqual({
      target: '',
      type: 'INVALID_MESSAGE',
      payload: 'JSON nested deeper than 64 levels',
    });
    // Nesting within the limit is forwarded untouched.
    const fine = `${'['.repeat(60)}1${']'.repeat(60)}`;
    s.send(`{"target":"deep-bob","type":"y","payload":${fine}}`);
    expect(await sb.next()).toBe(
      `{"originator":"deep-alice","target":"deep-bob","type":"y","payload":${fine}}`,
    );
    expect((await get(t, '/healthz')).statusCode).toBe(200);
    s.close();
    sb.close();
  });

  it('closes a socket that sends an oversize frame with 1009', async () => {
    const a = await register(t, 'big-alice');
    const s = await connect(a.cookie);
    s.send({ target: 'x', type: 'y', payload: 'z'.repeat(70 * 1024) });
    expect((await s.closed).code).toBe(1009);
  });

  it('rate-limits a flood: RATE_LIMITED replies, then 1008 when it goes on', async () => {
    const a = await register(t, 'flood-alice');
    const s = await connect(a.cookie);
    for (let i = 0; i < 15; i++) s.send({ target: 'flood-alice', type: 'f', payload: i });
    await s.next((m) => m.includes('RATE_LIMITED'));
    for (let i = 0; i < 40; i++)
      if (s.ws.readyState === WebSocket.OPEN) s.send({ target: 'nobody', type: 'f' });
    expect((await s.closed).code).toBe(1008);
  });

  it('survives abrupt disconnects and frees the user for a new connection', async () => {
    const a = await register(t, 'abrupt-alice');
    const b = await register(t, 'abrupt-bob');
    const s = await connect(a.cookie);
    s.ws.terminate();
    const sb = await connect(b.cookie);
    // Until the server has noticed alice is gone, a message to her is not refused: ask
    // again until it is.
    await eventually(
      async () => {
        const from = sb.messages.length;
        sb.send({ target: 'abrupt-alice', type: 'ping' });
        return sb
          .next((m) => m.includes('TARGET_NOT_FOUND'), 1000, from)
          .then(
            () => true,
            () => false,
          );
      },
      15_000,
      'a message to alice to be refused',
    );
    const again = await connect(a.cookie);
    sb.send({ target: 'abrupt-alice', type: 'back' });
    expect(JSON.parse(await again.next()).type).toBe('back');
    again.close();
    sb.close();
  });

  it('counts open sockets by surface in /metrics', async () => {
    const a = await register(t, 'metrics-alice');
    const s = await connect(a.cookie);
    const text = (await get(t, '/metrics')).body;
    expect(text).toMatch(/chorus_websockets_open\{surface="signal"\} [1-9]/);
    expect(text).toMatch(
      /chorus_http_requests_total\{method="POST",route="\/v1\/register",status="200"\} \d+/,
    );
    s.close();
  });
});

describe('GET /v1/kick-active-users', () => {
  it('refuses without the admin token and with a wrong one', async () => {
    expect((await get(t, '/v1/kick-active-users')).statusCode).toBe(401);
    const wrong = await get(t, '/v1/kick-active-users', { authorization: 'Bearer nope' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json<{ error: { code: string } }>().error.code).toBe('unauthenticated');
  });

  it('closes every active connection (4002 KICKED) with the admin token', async () => {
    const a = await register(t, 'kick-a');
    const b = await register(t, 'kick-b');
    const sa = await connect(a.cookie);
    const sb = await connect(b.cookie);
    const res = await get(t, '/v1/kick-active-users', { authorization: `Bearer ${ADMIN}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('OK');
    expect(await sa.closed).toEqual({ code: 4002, reason: 'KICKED' });
    expect(await sb.closed).toEqual({ code: 4002, reason: 'KICKED' });
    // They can come straight back.
    const back = await connect(a.cookie);
    expect(back.ws.readyState).toBe(WebSocket.OPEN);
    back.close();
  });

  it('is 403 when no admin token is configured, and open only when the operator says so', async () => {
    const closed = await startTestServer(INJECTED);
    const open = await startTestServer({ ...INJECTED, admin: { open: true } });
    try {
      expect((await get(closed, '/v1/kick-active-users')).statusCode).toBe(403);
      expect((await get(open, '/v1/kick-active-users')).statusCode).toBe(200);
    } finally {
      await closed.close();
      await open.close();
    }
  });
});

describe('heartbeat', () => {
  it('closes a connection that stops answering pings', async () => {
    const hb = await startTestServer({ ...INJECTED, signal: { heartbeatSeconds: 1 } });
    try {
      const r = await register(hb, 'hb-alice');
      // autoPong off: this client never answers the server's pings.
      const s = await TestSocket.open(`${hb.wsUrl}/v1/connect`, { cookie: r.cookie }, { autoPong: false });
      expect((await within(s.closed, 15_000, 'the server to drop the silent client')).code).toBe(1006);
    } finally {
      await hb.close();
    }
  });
});
