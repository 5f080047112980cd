import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

const SECRET = 'a-test-secret-of-some-length';
const key = new TextEncoder().encode(SECRET);
let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({
    beep: { tokenSecret: SECRET, tokenMaxLifetimeSeconds: 3600 },
    webrtc: { bindAddress: '127.0.0.1' },
  });
});
afterAll(() => t.close());

/** A token for bob's phone; `shape` sets its times. */
const token = (shape: (jwt: SignJWT) => SignJWT) =>
  shape(new SignJWT({ userid: 'bob', clientid: 'phone' }).setProtectedHeader({ alg: 'HS256' })).sign(key);
const ask = async (jwt: string) => {
  const res = await fetch(`${t.url}/conversation/standup?token=${jwt}`);
  return [res.status, await res.text()];
};
const now = () => Math.floor(Date.now() / 1000);

describe('Beep ?token=: exp is required and bounded by BEEP_TOKEN_MAX_LIFETIME_SECONDS', () => {
  it('accepts a token that expires within the limit (with or without iat)', async () => {
    expect(await ask(await token((j) => j.setExpirationTime('10m')))).toEqual([200, '{"members":0}']);
    expect(await ask(await token((j) => j.setIssuedAt().setExpirationTime('1h')))).toEqual([
      200,
      '{"members":0}',
    ]);
  });

  it('refuses a token without exp', async () => {
    expect(await ask(await token((j) => j))).toEqual([401, 'invalid token: exp is required']);
    expect(await ask(await token((j) => j.setIssuedAt()))).toEqual([401, 'invalid token: exp is required']);
  });

  it('refuses a token valid for longer than the limit, from now or from its iat', async () => {
    expect(await ask(await token((j) => j.setExpirationTime('2h')))).toEqual([
      401,
      'invalid token: valid for more than 3600 s',
    ]);
    // Issued two hours ago, expiring in ten minutes: its lifetime was over the limit.
    expect(await ask(await token((j) => j.setIssuedAt(now() - 7200).setExpirationTime(now() + 600)))).toEqual(
      [401, 'invalid token: valid for more than 3600 s'],
    );
  });

  it('refuses an expired token', async () => {
    expect(await ask(await token((j) => j.setExpirationTime(now() - 60)))).toEqual([401, 'invalid token']);
  });
});
