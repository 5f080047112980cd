import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeSideSite } from '../fixtures/fake-side-site.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { listenFor, SseClient } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';

const ORIGIN = 'https://site.example';
const site = new FakeSideSite();
let t: TestServer;

beforeAll(async () => {
  await site.start();
  site.users.set('tokAlice', 12).set('tokBob', 13).set('tokSlow', 14);
  site.slowTokens.add('tokSlow');
  // The slow token answers well past the server's deadline, which itself leaves a busy
  // machine plenty of time for the fast answers.
  site.slowMs = 20_000;
  site.forbiddenDestinations.add(99);
  site.sendRooms.add(5);
  site.listenRooms.add(5);
  t = await startTestServer({
    voip: {
      siteEnabled: true,
      siteUrl: site.url,
      siteOrigin: ORIGIN,
      siteTimeoutMs: 3000,
      siteCacheSeconds: 0,
    },
  });
});
afterAll(async () => {
  await t.close();
  await site.stop();
});

const post = (path: string, token: string, form: Record<string, string>) =>
  fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { CSRFToken: token, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  }).then(async (r) => ({
    status: r.status,
    text: await r.text(),
    cors: r.headers.get('access-control-allow-origin'),
  }));

describe('VOIP with a side site', () => {
  it('resolves tokens through the site and sends plain-JSON events', async () => {
    const alice = await SseClient.open(`${t.url}/messages?CSRFtoken=tokAlice`);
    const bob = await SseClient.open(`${t.url}/messages?CSRFtoken=tokBob`);
    expect(alice.status).toBe(200);
    expect(alice.headers?.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(alice.headers?.get('access-control-allow-credentials')).toBe('true');
    expect((await alice.next('pubkey')).data).toMatch(/^04[0-9a-f]{128}$/);

    expect(await post('/newCall', 'tokAlice', { Destination: '13' })).toMatchObject({
      status: 200,
      cors: ORIGIN,
    });
    expect((await bob.next('newCall')).data).toBe('{"from": 12}');
    expect((await post('/acceptCall', 'tokBob', { From: '12' })).status).toBe(200);
    expect((await alice.next('acceptedCall')).data).toBe('{"from": 13}');
    expect(site.asked).toContain('/Membres/peuxAppeller/13/tokAlice');
    // The original asked about user 0 here (From parsed too late); Chorus asks about the caller.
    expect(site.asked).toContain('/Membres/peuxAppeller/12/tokBob');

    const tokenCheck = await fetch(`${t.url}/tokenCheck`, { headers: { CSRFToken: 'tokBob' } });
    expect(await tokenCheck.text()).toBe('13');

    const listening = listenFor(
      `${t.url}/joinCall`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: 'tokBob', otherID: '12', format: 'wav' }),
      },
      300,
    );
    expect((await alice.next('setAudioConf')).data).toBe('{"from": 13,"in": "0","out": "1"}');
    expect((await listening).type).toBe('audio/wav');
    alice.close();
    bob.close();
  });

  it('refuses what the site denies, and bad or unknown tokens', async () => {
    expect(await post('/newCall', 'tokAlice', { Destination: '99' })).toMatchObject({
      status: 403,
      text: 'mysite.checkAppel API error\n',
    });
    expect(await post('/newCall', 'tokNobody', { Destination: '13' })).toMatchObject({
      status: 403,
      text: 'mysite.checkCRSF API error\n',
    });
    expect((await post('/newCall', 'bad/token', { Destination: '13' })).status).toBe(403);
    expect(await post('/newCall', 'tokAlice', { Destination: 'abc' })).toMatchObject({
      status: 400,
      text: 'bad destination id\n',
    });
    const denied = await fetch(`${t.url}/joinRoom`, {
      method: 'POST',
      headers: { CSRFToken: 'tokAlice', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ roomID: '6' }),
    });
    expect([denied.status, await denied.text()]).toEqual([403, 'mysite.newListener API error\n']);
  });

  it('has no tickets or relayed answers, and declines a call without asking the site', async () => {
    // Refused before anyone is asked who is calling.
    const ticket = await t.server.app.inject({ method: 'GET', url: '/getCallTicket' });
    expect([ticket.statusCode, ticket.body]).toEqual([404, 'no tickets in side-site mode\n']);
    for (const name of ['answer', 'answer2']) {
      const res = await post(`/${name}`, 'tokAlice', { Destination: '13' });
      expect(res).toMatchObject({ status: 404, text: `no ${name} in side-site mode\n`, cors: ORIGIN });
    }
    const preflight = await t.server.app.inject({ method: 'OPTIONS', url: '/acceptCall' });
    expect([preflight.statusCode, preflight.body]).toEqual([200, '']);
    expect(preflight.headers).toMatchObject({
      'access-control-allow-origin': ORIGIN,
      'access-control-allow-credentials': 'true',
      vary: 'Origin',
      'access-control-allow-headers': 'PKey,CSRFToken,Last-Event-ID,Content-Type',
    });

    const alice = await SseClient.open(`${t.url}/messages?CSRFtoken=tokAlice`);
    expect((await post('/newCall', 'tokAlice', { Destination: '13' })).status).toBe(200);
    const asked = site.asked.length;
    expect(await post('/rejectCall', 'tokBob', { From: 'x' })).toMatchObject({
      status: 400,
      text: 'bad From id\n',
    });
    expect((await post('/rejectCall', 'tokBob', { From: '12' })).status).toBe(200);
    expect((await alice.next('declineCall')).data).toBe('{"from": 13}');
    expect(site.asked.slice(asked).filter((p) => p.startsWith('/Membres/peuxAppeller'))).toEqual([]);
    alice.close();
  });

  it('answers 503 when the site is slow, and keeps serving', async () => {
    const res = await post('/newCall', 'tokSlow', { Destination: '13' });
    expect(res).toMatchObject({ status: 503, text: 'side site unavailable\n' });
    expect((await post('/newCall', 'tokAlice', { Destination: '13' })).status).toBe(200);
  });

  it('tells the site when a room listener leaves', async () => {
    const res = await listenFor(
      `${t.url}/joinRoom`,
      {
        method: 'POST',
        headers: { CSRFToken: 'tokAlice', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ roomID: '5', format: 'wav' }),
      },
      200,
    );
    expect(res.status).toBe(200);
    await eventually(
      () => site.asked.includes('/Groupes/ecouteAudioGroup/5/tokAlice/0'),
      10_000,
      'the site told of the leave',
    );
    expect(site.asked).toContain('/Groupes/ecouteAudioGroup/5/tokAlice/1');
    expect(site.asked).toContain('/Groupes/ecouteAudioGroup/5/tokAlice/0');
  });
});

describe('VOIP with a side site that is down', () => {
  it('answers 503 with a clear text', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = await startTestServer({ voip: { siteEnabled: true, siteUrl: `http://127.0.0.1:${port}` } });
    try {
      const res = await fetch(`${down.url}/messages?CSRFtoken=tokAlice`);
      expect([res.status, await res.text()]).toEqual([503, 'side site unavailable\n']);
    } finally {
      await down.close();
    }
  });
});
