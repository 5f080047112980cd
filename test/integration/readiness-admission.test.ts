import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { createServer } from '../../src/server/create-server.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { startTestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';

// The SFU's overload guard refuses new legs while the event loop is over its limit; the
// test server turns it off, these tests turn it on. The server shares this process's
// event loop, so the test drives its load by keeping the loop busy itself.
const BUSY_PERCENT = 95;

const toClose: Array<{ close(): void | Promise<void> }> = [];
afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
});

/** Keeps the (shared) event loop busy for `ms`, yielding one turn every 120 ms. */
async function saturate(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const slice = Date.now() + 120;
    while (Date.now() < slice) {
      /* busy */
    }
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * The first HTTP request of a process compiles its client (undici, llhttp): a few hundred
 * ms of a busy loop that, in this shared process, would be counted as the server's load.
 */
async function warmHttpClient(): Promise<void> {
  const http = createHttpServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  await (await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`)).text();
  await new Promise((resolve) => http.close(resolve));
}

async function createRoom(url: string): Promise<string> {
  const res = await fetch(`${url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: 'admin' }),
  });
  return ((await res.json()) as { id: string }).id;
}

/** An offer as the original's clients post it; an overloaded server refuses it unread. */
const postOffer = (url: string, room: string, user: string) =>
  fetch(`${url}/webrtc/sdp/m/${room}/c/${user}/p/${user}/s/true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'offer', sdp: 'v=0\r\n' }),
  });

interface ReadyBody {
  ready: boolean;
  components: Record<string, boolean>;
  reasons?: Record<string, string>;
}
const readyz = async (url: string) => {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
};

async function joinRoom(url: string, room: string, user: string): Promise<number> {
  const pub = new NdcPublisher();
  toClose.push(pub);
  return (await pub.publish(url, room, user)).status;
}

describe('readiness and SFU admission agree', () => {
  it('does not count building the server as load: ready at once after listening, and a join is admitted', async () => {
    await warmHttpClient();
    const dataDir = mkdtempSync(join(tmpdir(), 'chorus-ready-'));
    toClose.push({ close: () => rmSync(dataDir, { recursive: true, force: true }) });
    const config = loadConfig({
      overrides: {
        http: { port: 0, bindAddress: '127.0.0.1' },
        tls: { port: 0 },
        log: { level: 'silent', requests: false },
        store: { dataDir },
        shutdown: { graceSeconds: 2 },
        webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1', overloadBusyPercent: BUSY_PERCENT },
      },
    });
    const server = await createServer(config, { logger: pino({ level: 'silent' }) });
    toClose.push(server);
    // Start-up work between building the server and listening (in a real process: loading
    // and compiling modules, route schemas, surfaces), which keeps the loop fully busy;
    // longer than the guard's 3 s window, so that all of it would be counted.
    await saturate(3500);
    await server.listen();
    const url = server.urls().http;

    // Ready at once: what happened before listening is not load.
    expect((await readyz(url)).status).toBe(200);
    const room = await createRoom(url);
    expect(await joinRoom(url, room, 'first')).toBe(200);
    expect((await readyz(url)).body.components.admission).toBe(true);
  }, 30_000);

  it('is not ready (503, naming admission) while the guard refuses joins, and admits once ready again', async () => {
    const t = await startTestServer({
      webrtc: { bindAddress: '127.0.0.1', overloadBusyPercent: BUSY_PERCENT },
    });
    toClose.push(t);
    const room = await createRoom(t.url);
    expect((await readyz(t.url)).body.components).toMatchObject({ admission: true });

    // Busy for longer than the guard's 3 s window; the checks run while it still is.
    const busy = saturate(6000);
    await eventually(async () => (await readyz(t.url)).status === 503, 10_000, '/readyz to say 503');
    const notReady = await readyz(t.url);
    expect(notReady.body.components.admission).toBe(false);
    expect(notReady.body.reasons?.admission).toMatch(
      /^server overloaded: its event loop is \d+ % busy \(limit 95 %\)$/,
    );
    const refused = await postOffer(t.url, room, 'late');
    expect(refused.status).toBe(503);
    // The same check answers both: the join is refused with the reason /readyz gives.
    expect(((await refused.json()) as { error: string }).error).toMatch(
      /^server overloaded: its event loop is \d+ % busy \(limit 95 %\)$/,
    );
    await busy;

    await eventually(async () => (await readyz(t.url)).status === 200, 15_000, '/readyz to recover');
    expect(await joinRoom(t.url, room, 'after')).toBe(200);
  }, 40_000);
});
