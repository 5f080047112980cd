import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runChorus, type ChorusProcess } from '../fixtures/chorus-process.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

const preload = fileURLToPath(new URL('../fixtures/process-faults.mjs', import.meta.url));
const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

async function start(faults: string): Promise<ChorusProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-guard-'));
  const p = await runChorus({
    HTTP_PORT: '0',
    BIND_ADDRESS: '127.0.0.1',
    DATA_DIR: dataDir,
    SHUTDOWN_GRACE_SECONDS: '3',
    NODE_OPTIONS: `--import ${preload}`,
    CHORUS_TEST_FAULTS: faults,
  });
  cleanup.push(() => {
    p.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  return p;
}

/** The log lines (JSON) whose message matches. */
const linesMatching = (p: ChorusProcess, msg: RegExp) =>
  p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown })
    .filter((l) => msg.test(l.msg));

const counted = async (p: ChorusProcess, kind: string) =>
  Number(
    new RegExp(`^chorus_uncaught_errors_total\\{kind="${kind}"\\} (\\d+)`, 'm').exec(
      await (await fetch(`${p.url}/metrics`)).text(),
    )?.[1],
  );

/** Nothing like the old Emscripten glue's dump: no huge line, no inlined WASM or source. */
function expectNoSourceDump(output: string): void {
  expect(output).not.toMatch(/base64,|wasmBinaryFile|Emscripten/);
  for (const line of output.split('\n')) expect(line.length).toBeLessThan(4000);
}

async function signalCookie(url: string, username: string): Promise<string> {
  const reg = await fetch(`${url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username }),
  });
  return (reg.headers.get('set-cookie') ?? '').split(';')[0]!;
}

/** A WebSocket upgrade whose client never answers the close: the drain waits its grace. */
function unresponsiveSocket(url: string, cookie: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/connect`, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        cookie,
      },
    });
    req.once('upgrade', (_res, socket) => {
      socket.on('error', () => undefined);
      cleanup.push(() => socket.destroy());
      resolve(socket);
    });
    req.once('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.once('error', reject);
    req.end();
  });
}

describe('process guard (a real process, faults preloaded from outside)', () => {
  it('logs an unhandled rejection once (short), counts it, and keeps serving', async () => {
    const p = await start('reject');
    expect(await counted(p, 'rejection')).toBe(0);
    p.kill('SIGUSR2');
    await eventually(() => /unhandled promise rejection/.test(p.output()), 10_000, 'the rejection log line');
    const [line, ...more] = linesMatching(p, /unhandled promise rejection/);
    expect(more).toEqual([]);
    expect(line).toMatchObject({
      level: 50,
      kind: 'rejection',
      error: { type: 'Error', message: 'process-faults: rejected on purpose' },
    });
    expect((line!.error as { stack: string }).stack).toMatch(/process-faults\.mjs/);
    expect(await counted(p, 'rejection')).toBe(1);
    expect(await counted(p, 'exception')).toBe(0);
    expect((await fetch(`${p.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${p.url}/readyz`)).status).toBe(200);
    // A normal client is still served.
    const s = await TestSocket.open(`${p.url.replace('http', 'ws')}/v1/connect`, {
      cookie: await signalCookie(p.url, 'after-rejection'),
    });
    s.close();
    expect(p.child.exitCode).toBe(null);
    expectNoSourceDump(p.output());
  });

  it('on an uncaught exception: logs it, goes not-ready, drains sockets (1001) within the grace, exits 1', async () => {
    const p = await start('throw');
    const wsUrl = p.url.replace('http', 'ws');
    const s = await TestSocket.open(`${wsUrl}/v1/connect`, { cookie: await signalCookie(p.url, 'guard-a') });
    // Holds the drain open for its grace, so readiness can be seen going to 503.
    await unresponsiveSocket(p.url, await signalCookie(p.url, 'guard-b'));
    expect((await fetch(`${p.url}/readyz`)).status).toBe(200);

    p.kill('SIGUSR2');
    await eventually(
      async () => (await fetch(`${p.url}/readyz`)).status === 503,
      10_000,
      '/readyz to say 503 while draining',
    );
    expect(await s.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await p.exited).toBe(1);

    const [fatal, ...more] = linesMatching(p, /uncaught exception/);
    expect(more).toEqual([]);
    expect(fatal).toMatchObject({
      level: 60,
      kind: 'exception',
      error: { type: 'Error', message: 'process-faults: thrown on purpose' },
    });
    expect((fatal!.error as { stack: string }).stack).toMatch(/process-faults\.mjs/);
    expect(linesMatching(p, /^draining$/)[0]).toMatchObject({ signal: 'uncaughtException' });
    expect(linesMatching(p, /^stopped$/)).toHaveLength(1);
    expectNoSourceDump(p.output());
  }, 30_000);
});
