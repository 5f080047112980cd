import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

const KEY = 'devkey';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const OTHER = 'other:another-secret-of-at-least-thirty-two-chars';

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer({ chorus: { apiKeys: [`${KEY}:${SECRET}`, OTHER] } });
});
afterAll(async () => ts.close());

async function listRooms(token?: string, scheme = 'Bearer'): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${ts.url}/chorus/v1/rooms`, {
    headers: token === undefined ? {} : { authorization: `${scheme} ${token}` },
  });
  return { status: res.status, body: await res.json() };
}

const refusal = (code: string, message: RegExp) => ({
  error: { code, message: expect.stringMatching(message) as unknown },
});

describe('native API access tokens', () => {
  it('lets a valid token with the grant in, with either configured key', async () => {
    const t1 = await createAccessToken(KEY, SECRET, { grants: { roomList: true }, ttlSeconds: 60 });
    expect(await listRooms(t1)).toEqual({ status: 200, body: { rooms: [] } });
    const [k2, s2] = OTHER.split(':') as [string, string];
    const t2 = await createAccessToken(k2, s2, { grants: { roomList: true }, ttlSeconds: 60 });
    expect((await listRooms(t2)).status).toBe(200);
  });

  it('answers 401 with a clear body when the token is missing or not a bearer JWT', async () => {
    expect(await listRooms()).toEqual({
      status: 401,
      body: refusal('unauthenticated', /missing Authorization/),
    });
    expect(await listRooms('abc', 'Basic')).toEqual({
      status: 401,
      body: refusal('unauthenticated', /Bearer/),
    });
    expect(await listRooms('not-a-jwt')).toEqual({
      status: 401,
      body: refusal('unauthenticated', /malformed/),
    });
  });

  it('answers 401 for an expired, not-yet-valid, wrong-key or wrong-secret token', async () => {
    const expired = await new SignJWT({ grants: { roomList: true } })
      .setProtectedHeader({ alg: 'HS256', kid: KEY })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 120)
      .sign(new TextEncoder().encode(SECRET));
    expect(await listRooms(expired)).toEqual({ status: 401, body: refusal('unauthenticated', /expired/) });

    const early = await createAccessToken(KEY, SECRET, {
      grants: { roomList: true },
      ttlSeconds: 3600,
      notBeforeSeconds: 600,
    });
    expect(await listRooms(early)).toEqual({
      status: 401,
      body: refusal('unauthenticated', /not valid yet/),
    });

    const unknownKey = await createAccessToken('nokey', SECRET, {
      grants: { roomList: true },
      ttlSeconds: 60,
    });
    expect(await listRooms(unknownKey)).toEqual({
      status: 401,
      body: refusal('unauthenticated', /unknown API key/),
    });

    const wrongSecret = await createAccessToken(KEY, 'x'.repeat(40), {
      grants: { roomList: true },
      ttlSeconds: 60,
    });
    expect(await listRooms(wrongSecret)).toEqual({
      status: 401,
      body: refusal('unauthenticated', /signature/),
    });

    const noKid = await new SignJWT({ grants: { roomList: true } })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode(SECRET));
    expect(await listRooms(noKid)).toEqual({ status: 401, body: refusal('unauthenticated', /no kid/) });

    const noExp = await new SignJWT({ grants: { roomList: true } })
      .setProtectedHeader({ alg: 'HS256', kid: KEY })
      .sign(new TextEncoder().encode(SECRET));
    expect(await listRooms(noExp)).toEqual({ status: 401, body: refusal('unauthenticated', /exp/) });

    // Claims of the wrong shape (an unknown grant, a grants string) are refused, not ignored.
    const badClaims = await new SignJWT({ grants: { roomList: true, superUser: true } })
      .setProtectedHeader({ alg: 'HS256', kid: KEY })
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode(SECRET));
    expect(await listRooms(badClaims)).toEqual({
      status: 401,
      body: refusal('unauthenticated', /claims are invalid/),
    });
  });

  it('answers 403 naming the missing grant for an under-privileged token', async () => {
    const joinOnly = await createAccessToken(KEY, SECRET, {
      identity: 'alice',
      room: 'r1',
      grants: { roomJoin: true, canPublish: true, canSubscribe: true },
      ttlSeconds: 60,
    });
    expect(await listRooms(joinOnly)).toEqual({ status: 403, body: refusal('forbidden', /roomList/) });
    const create = await fetch(`${ts.url}/chorus/v1/rooms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${joinOnly}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'r1' }),
    });
    expect(create.status).toBe(403);
    expect(await create.json()).toEqual(refusal('forbidden', /roomCreate/));
  });
});

describe('native API with no API keys configured', () => {
  let bare: TestServer;
  beforeAll(async () => {
    bare = await startTestServer();
  });
  afterAll(async () => bare.close());

  it('refuses every token (401), saying that no keys are configured', async () => {
    const t = await createAccessToken(KEY, SECRET, { grants: { roomList: true }, ttlSeconds: 60 });
    const res = await fetch(`${bare.url}/chorus/v1/rooms`, { headers: { authorization: `Bearer ${t}` } });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual(refusal('unauthenticated', /CHORUS_API_KEYS/));
  });
});
