import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign } from '@fastify/cookie';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/ports/store/lmdb-store.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

/** Servers trust X-Forwarded-For from loopback, so each test can speak from several IPs. */
const started: TestServer[] = [];
async function server(signal: Record<string, unknown>): Promise<TestServer> {
  const t = await startTestServer({ http: { trustProxy: ['127.0.0.1'] }, signal });
  started.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((t) => t.close()));
});

async function register(t: TestServer, username: string, ip: string, cookie = '') {
  const res = await fetch(`${t.url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip, ...(cookie ? { cookie } : {}) },
    body: JSON.stringify({ username }),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as { status: string; message: string },
    cookie: (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '',
  };
}

describe('Signal: per-IP limits on /v1/register', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the burst, while another IP still registers', async () => {
    const t = await server({ registerRatePerMinute: 1, registerBurst: 5 });
    for (let i = 0; i < 5; i++) expect((await register(t, `burst-${i}`, '203.0.113.1')).status).toBe(200);
    const refused = await register(t, 'burst-5', '203.0.113.1');
    expect(refused.status).toBe(429);
    expect(refused.body.status).toBe('RATE_LIMITED');
    expect(refused.body.message).toMatch(/too many registrations/);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    // Nothing was stored for the refused request.
    expect((await register(t, 'burst-5', '203.0.113.2')).status).toBe(200);
    expect((await register(t, 'other-ip', '203.0.113.2')).status).toBe(200);
  });

  it('caps the new names one IP registers a day; existing names are still answered', async () => {
    const t = await server({ registerRatePerMinute: 0, maxNamesPerIpPerDay: 2 });
    const first = await register(t, 'daily-a', '198.51.100.7');
    expect(first.status).toBe(200);
    expect((await register(t, 'daily-b', '198.51.100.7')).status).toBe(200);
    const third = await register(t, 'daily-c', '198.51.100.7');
    expect(third.status).toBe(429);
    expect(third.body).toEqual({
      status: 'RATE_LIMITED',
      message: 'at most 2 new names a day from one address',
    });
    expect(third.retryAfter).not.toBeNull();
    // The holder registering again is not a new name; someone else's name is still TAKEN.
    expect((await register(t, 'daily-a', '198.51.100.7', first.cookie)).status).toBe(200);
    expect((await register(t, 'daily-b', '198.51.100.7')).body.status).toBe('TAKEN');
    // Refused registrations do not count: another address gets the name.
    expect((await register(t, 'daily-c', '198.51.100.8')).status).toBe(200);
  });
});

describe('Signal: names unused for SIGNAL_NAME_TTL_DAYS expire', () => {
  it('deletes an unused name and keeps one that is connected', async () => {
    const t = await server({ registerRatePerMinute: 0, nameTtlDays: 1.5 / 86_400 });
    const idle = await register(t, 'ttl-idle', '192.0.2.1');
    const busy = await register(t, 'ttl-busy', '192.0.2.1');
    expect([idle.status, busy.status]).toEqual([200, 200]);
    const socket = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie: busy.cookie });
    try {
      // Registering does not mark a name used, so polling with it keeps nothing alive.
      await eventually(
        async () => (await register(t, 'ttl-idle', '192.0.2.2')).body.status === 'SUCCESS',
        20_000,
        'the idle name to expire and be free again',
      );
      // The idle name is gone for its old holder too.
      const user = await fetch(`${t.url}/v1/user`, { headers: { cookie: idle.cookie } });
      expect(user.status).toBe(401);
      // The connected name outlived its TTL many times over.
      expect((await register(t, 'ttl-busy', '192.0.2.2')).body.status).toBe('TAKEN');
      expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    } finally {
      socket.close();
    }
  });
});

describe('Signal: sessions of names registered before expiry existed', () => {
  it('still accepts their cookie (the signed bare name), and only with the right secret', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chorus-legacy-'));
    const secret = 'a-cookie-secret-of-at-least-32-characters';
    try {
      // A record as the previous version wrote it: no lastSeenAt, sessions not bound.
      const store = new LmdbStore(dataDir);
      await store.bucket('identities-signal').put('legacy-user', { registeredAt: Date.now() });
      await store.close();
      const t = await startTestServer({ signal: { cookieSecret: secret } }, { dataDir });
      started.push(t);
      const cookie = `user_username=${sign('legacy-user', secret)}`;
      expect((await fetch(`${t.url}/v1/user`, { headers: { cookie } })).status).toBe(200);
      const socket = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
      socket.send({ target: 'legacy-user', type: 'note-to-self' });
      expect(JSON.parse(await socket.next((m) => m.includes('note-to-self')))).toMatchObject({
        originator: 'legacy-user',
      });
      socket.close();
      const forged = `user_username=${sign('legacy-user', 'another-secret-of-at-least-32-characters')}`;
      expect((await fetch(`${t.url}/v1/user`, { headers: { cookie: forged } })).status).toBe(401);
      await t.close();
      started.splice(started.indexOf(t), 1);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
