import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { dominantFrequency, powerAt } from '../fixtures/audio.js';
import { BeepVoiceClient } from '../fixtures/beep-client.js';
import { FakePermissions } from '../fixtures/fake-permissions.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';

const SECRET = 'a-test-secret-of-some-length';
const perms = new FakePermissions();
let t: TestServer;

const claim = (userid: string, clientid = 'web') => ({
  'X-User-Claim': JSON.stringify({ userid, clientid }),
});
const join = (conversation: string, headers: Record<string, string>) =>
  fetch(`${t.url}/join/${conversation}`, { method: 'POST', headers }).then(async (r) => ({
    status: r.status,
    text: await r.text(),
  }));

beforeAll(async () => {
  await perms.start();
  perms.allow('alice', 'standup');
  perms.allow('bob', 'standup');
  perms.allow('alice', 'slow');
  // The slow conversation is answered (200: alice may join it) only long after this test
  // has ended, so a 503 can only come from the server giving up at its own deadline. That
  // deadline is generous: the fast answers must not miss it on a loaded machine.
  perms.slowMs = 120_000;
  t = await startTestServer({
    beep: { permissionsHost: perms.url, permissionsTimeoutMs: 3000, tokenSecret: SECRET },
    webrtc: { bindAddress: '127.0.0.1' },
  });
});
afterAll(async () => {
  await t.close();
  await perms.stop();
});

describe('Beep: identity and permissions', () => {
  it('refuses missing or unparsable claims with 400', async () => {
    expect(await join('standup', {})).toEqual({ status: 400, text: 'Error parsing X-User-Claims header' });
    expect((await join('standup', { 'X-User-Claim': '{not json' })).status).toBe(400);
    expect((await join('standup', { 'X-User-Claim': '{"userid":"alice"}' })).status).toBe(400);
    expect((await join('standup', { 'X-User-Claim': '{"userid":"","clientid":"x"}' })).status).toBe(400);
  });

  it('asks backend-permissions: allowed 200, denied 401, broken 502, slow 503', async () => {
    expect(await join('standup', claim('alice'))).toEqual({ status: 200, text: '' });
    expect(perms.asked).toContain('/user/alice/conversation/standup');
    expect((await join('secret', claim('alice'))).status).toBe(401);
    expect((await join('broken', claim('alice'))).status).toBe(502);
    expect(await join('slow', claim('alice'))).toEqual({
      status: 503,
      text: 'permissions service unreachable',
    });
  });

  it('accepts a signed token instead of the header, and refuses a forged one', async () => {
    const sign = (secret: string) =>
      new SignJWT({ userid: 'bob', clientid: 'phone' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime('1m')
        .sign(new TextEncoder().encode(secret));
    const ok = await fetch(`${t.url}/join/standup?token=${await sign(SECRET)}`, { method: 'POST' });
    expect(ok.status).toBe(200);
    const forged = await fetch(`${t.url}/join/standup?token=${await sign('another-secret-entirely')}`, {
      method: 'POST',
    });
    expect([forged.status, await forged.text()]).toEqual([401, 'invalid token']);
  });

  it('refuses a malformed offer with a close reason, and an upgrade without a claim', async () => {
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/connect`, { headers: claim('alice') });
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<[number, string]>((r) =>
      ws.once('close', (c, reason) => r([c, reason.toString()])),
    );
    ws.send('this is not SDP');
    const [code, reason] = await closed;
    expect(code).toBe(1007);
    expect(reason).toMatch(/SDP/);
    const refused = await new Promise<number>((resolve) => {
      const bare = new WebSocket(`${t.url.replace('http', 'ws')}/connect`);
      bare.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      bare.once('open', () => resolve(101));
    });
    expect(refused).toBe(400);
  });
});

describe('Beep: a conversation', () => {
  it('two clients, one per signalling style, join and hear each other (and not themselves)', async () => {
    const alice = new BeepVoiceClient(440);
    const bob = new BeepVoiceClient(1000);
    try {
      await alice.connect(`${t.url.replace('http', 'ws')}/connect`, 'bare', claim('alice'));
      await bob.connect(`${t.url.replace('http', 'ws')}/connect`, 'tagged', claim('bob'));
      // The signalling socket closes once the peer connection is up.
      await eventually(
        () => alice.closeEvent !== undefined && bob.closeEvent !== undefined,
        10_000,
        'socket closes',
      );
      expect(alice.closeEvent).toEqual({ code: 1000, reason: 'connected' });
      expect((await join('standup', claim('alice'))).status).toBe(200);
      expect((await join('standup', claim('bob'))).status).toBe(200);
      alice.speak();
      bob.speak();
      await eventually(() => alice.chunks > 150 && bob.chunks > 150, 10_000, 'audio both ways');
      // Each hears the other, and not themselves: the last second each heard is the other's
      // tone, 50 times stronger than their own. Waited for, not judged at once: the first
      // chunks can be silence while the mix fills, and on a loaded machine glitches (late
      // chunks, concealment) smear a tone's power for a moment. Hearing oneself never
      // passes, however long it runs.
      const clear = (heard: Int16Array, want: number, own: number) =>
        dominantFrequency(heard) === want && powerAt(heard, want) > 50 * powerAt(heard, own);
      await eventually(
        () => clear(alice.recent(1000), 1000, 440) && clear(bob.recent(1000), 440, 1000),
        20_000,
        'each to hear the other clearly',
      );
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      expect(metrics).toMatch(/^chorus_sfu_peers\{role="voice"\} 2$/m);
      expect(metrics).toMatch(/^chorus_beep_conversations 1$/m);
      // Joining another conversation leaves the first.
      perms.allow('alice', 'retro');
      expect((await join('retro', claim('alice'))).status).toBe(200);
      const members = async (c: string) =>
        (
          (await (await fetch(`${t.url}/conversation/${c}`, { headers: claim('alice') })).json()) as {
            members: number;
          }
        ).members;
      expect([await members('standup'), await members('retro')]).toEqual([1, 1]);
    } finally {
      alice.close();
      bob.close();
    }
  }, 60_000);
});

describe('Beep: trust and reachability', () => {
  it('refuses a claim header from an address that is not a trusted proxy, and foreign origins', async () => {
    const s = await startTestServer({ beep: { trustedProxies: ['10.0.0.0/8'], permissionsHost: perms.url } });
    try {
      const res = await fetch(`${s.url}/join/standup`, { method: 'POST', headers: claim('alice') });
      expect([res.status, await res.text()]).toEqual([403, 'X-User-Claim is not accepted from this address']);
    } finally {
      await s.close();
    }
    const origin = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}/connect`, {
        headers: { ...claim('alice'), Origin: 'https://evil.example' },
      });
      ws.once('unexpected-response', (_req, r) => resolve(r.statusCode ?? 0));
      ws.once('open', () => resolve(101));
    });
    expect(origin).toBe(403);
  });

  it('answers 503 when backend-permissions is down, and nothing changes', async () => {
    const down = new FakePermissions();
    await down.start();
    const url = down.url;
    await down.stop();
    const s = await startTestServer({ beep: { permissionsHost: url } });
    try {
      const res = await fetch(`${s.url}/join/standup`, { method: 'POST', headers: claim('alice') });
      expect([res.status, await res.text()]).toEqual([503, 'permissions service unreachable']);
      const members = await fetch(`${s.url}/conversation/standup`, { headers: claim('alice') });
      expect(await members.json()).toEqual({ members: 0 });
    } finally {
      await s.close();
    }
  });
});

describe('Beep: bad signalling', () => {
  it('closes on a binary frame, and frees the peer of a client that vanishes before its offer', async () => {
    const s = await startTestServer({ beep: { permissionsHost: perms.url } });
    const voices = async () =>
      Number(
        /^chorus_sfu_peers\{role="voice"\} (\d+)/m.exec(await (await fetch(`${s.url}/metrics`)).text())?.[1],
      );
    try {
      const ws = new WebSocket(`${s.url.replace('http', 'ws')}/connect`, { headers: claim('carol') });
      await new Promise((r) => ws.once('open', r));
      const closed = new Promise<[number, string]>((r) =>
        ws.once('close', (c, reason) => r([c, reason.toString()])),
      );
      ws.send(Buffer.from([1, 2, 3]));
      expect(await closed).toEqual([1007, 'expected text frames']);

      const gone = new WebSocket(`${s.url.replace('http', 'ws')}/connect`, { headers: claim('dave') });
      await new Promise((r) => gone.once('open', r));
      await eventually(async () => (await voices()) === 1, 10_000, 'a voice peer for dave');
      gone.terminate();
      await eventually(async () => (await voices()) === 0, 10_000, 'the peer freed');
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});
