import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChorus, type ChorusProcess } from '../fixtures/chorus-process.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

async function register(url: string, username: string): Promise<string> {
  const res = await fetch(`${url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username }),
  });
  expect(res.status).toBe(200);
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}

/** The answer to a WebSocket upgrade the server refuses: status, Retry-After, body. */
function refusedUpgrade(
  url: string,
  cookie: string,
): Promise<{ status: number; retryAfter: string; body: string }> {
  const ws = new WebSocket(url, { headers: { cookie } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted while draining'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, retryAfter: String(res.headers['retry-after']), body }),
      );
    });
    ws.once('error', reject);
  });
}

/**
 * SIGTERM on a real process: `/readyz` 503 at once, new sessions 503 with Retry-After,
 * the running call keeps working through the grace, and the process exits 0 as soon as
 * the last session ends (well inside a grace far longer than the test).
 */
describe('drain on SIGTERM (real process)', () => {
  let p: ChorusProcess;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chorus-drain-'));
    p = await runChorus({
      HTTP_PORT: '0',
      BIND_ADDRESS: '127.0.0.1',
      DATA_DIR: dataDir,
      SHUTDOWN_GRACE_SECONDS: '120',
    });
  });

  afterAll(() => {
    p.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses new sessions, keeps the running call, exits 0 when it ends', async () => {
    const ws = p.url.replace('http', 'ws');
    const alice = await register(p.url, 'drain-alice');
    const bob = await register(p.url, 'drain-bob');
    const late = await register(p.url, 'drain-late');
    const sa = await TestSocket.open(`${ws}/v1/connect`, { cookie: alice });
    const sb = await TestSocket.open(`${ws}/v1/connect`, { cookie: bob });
    expect((await fetch(`${p.url}/readyz`)).status).toBe(200);

    p.kill('SIGTERM');
    await eventually(async () => (await fetch(`${p.url}/readyz`)).status === 503, 10_000, '/readyz 503');
    const readyz = (await (await fetch(`${p.url}/readyz`)).json()) as { draining: boolean };
    expect(readyz.draining).toBe(true);
    expect((await fetch(`${p.url}/healthz`)).status).toBe(200);

    const refused = await refusedUpgrade(`${ws}/v1/connect`, late);
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(refused.body).toMatch(/shutting down/);

    // A new VOIP call and a new Blue Sky room are refused the same way, in their formats.
    const newCall = await fetch(`${p.url}/newCall`, { method: 'POST', body: 'to=someone' });
    expect(newCall.status).toBe(503);
    expect(Number(newCall.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await newCall.text()).toMatch(/shutting down/);
    const room = await fetch(`${p.url}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(room.status).toBe(503);
    expect(Number(room.headers.get('retry-after'))).toBeGreaterThan(0);
    // Other requests still work: the room list, the running call's own exchanges below.
    expect((await fetch(`${p.url}/webrtc/room`)).status).toBe(200);

    // The call already running still carries messages both ways.
    sa.send({ target: 'drain-bob', type: 'video-offer', payload: { during: 'drain' } });
    expect(JSON.parse(await sb.next())).toMatchObject({
      originator: 'drain-alice',
      payload: { during: 'drain' },
    });
    sb.send({ target: 'drain-alice', type: 'ice-candidate' });
    expect(JSON.parse(await sa.next())).toMatchObject({ originator: 'drain-bob' });

    // The call ends: nothing is left to wait for, so the process stops without the 120 s.
    sa.close();
    sb.close();
    expect(await p.exited).toBe(0);
    expect(p.output()).toMatch(/"msg":"drained: no session left"/);
    expect(p.output()).toMatch(/"msg":"stopped"/);
  }, 60_000);
});
