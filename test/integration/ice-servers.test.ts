import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

interface Answer {
  iceServers: Array<{ urls: string[]; username?: string; credential?: string }>;
}

const SECRET = 'a-turn-secret-of-some-length';

describe('GET /ice-servers (ICE_SERVERS, TURN_SECRET)', () => {
  let withTurn: TestServer;
  let plain: TestServer;

  beforeAll(async () => {
    withTurn = await startTestServer({
      network: {
        iceServers: [
          'stun:turn.example.org:3478',
          'turn:turn.example.org:3478?transport=udp',
          'turns:turn.example.org:5349',
        ],
        turnSecret: SECRET,
      },
    });
    plain = await startTestServer();
  });

  afterAll(async () => {
    await withTurn?.close();
    await plain?.close();
  });

  it('hands the pages STUN as is and TURN with a 24 h credential coturn accepts', async () => {
    const before = Math.floor(Date.now() / 1000);
    const res = await fetch(`${withTurn.url}/ice-servers`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Answer;
    expect(body.iceServers[0]).toEqual({ urls: ['stun:turn.example.org:3478'] });
    const turn = body.iceServers[1]!;
    expect(turn.urls).toEqual(['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349']);
    const [expiry, name] = turn.username!.split(':');
    expect(name).toBe('chorus');
    expect(Number(expiry) - before).toBeGreaterThanOrEqual(24 * 3600);
    expect(Number(expiry) - before).toBeLessThan(24 * 3600 + 60);
    // TURN REST API: password = base64(HMAC-SHA1(secret, username)).
    expect(turn.credential).toBe(createHmac('sha1', SECRET).update(turn.username!).digest('base64'));
  });

  it('hands out none when none is configured', async () => {
    const body = (await (await fetch(`${plain.url}/ice-servers`)).json()) as Answer;
    expect(body).toEqual({ iceServers: [] });
  });

  it('refuses a URL that is no STUN/TURN URL, and a short secret, at start-up', () => {
    expect(() => loadConfig({ env: { ICE_SERVERS: 'http://turn.example.org' } })).toThrow(/ICE_SERVERS/);
    expect(() => loadConfig({ env: { TURN_SECRET: 'short' } })).toThrow(/TURN_SECRET/);
    expect(
      loadConfig({ env: { ICE_SERVERS: 'stun:a.example:3478, turn:b.example' } }).network.iceServers,
    ).toEqual(['stun:a.example:3478', 'turn:b.example']);
  });
});
