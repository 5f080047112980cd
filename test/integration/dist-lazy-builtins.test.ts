import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildDistInTemp, removeDistBuild } from '../fixtures/dist-build.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { selfSignedCert } from '../fixtures/self-signed.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';

const repo = process.cwd();
/** Node's own modules an idle production build must not load (scripts/build-dist.mjs, #17.2). */
const NOT_AT_IDLE = [
  'tls',
  'https',
  'http2',
  'zlib',
  'internal/deps/undici/undici',
  // pino's transports' threads; util's lazy exports read by esbuild's interop (scripts/build-dist.mjs)
  'worker_threads',
  'internal/util/diff',
  // @noble/curves touching globalThis.crypto at its top (api/voip/pkey.ts)
  'internal/crypto/webcrypto',
];
const LISTENING = /"msg":"chorus listening"/;

interface Started {
  child: ChildProcess;
  list: string;
  exited: Promise<number | null>;
  output: () => string;
}

/**
 * The production build (`node dist/src/main.js serve`, every surface on) in a temp folder,
 * resolving packages from the checkout as bench/idle does; Node's module list on SIGUSR2.
 */
describe('production build: Node modules an idle server does not use are loaded on first use', () => {
  let app: string;
  const started: Started[] = [];

  beforeAll(async () => {
    app = await buildDistInTemp('chorus-dist-lazy-');
  }, 300_000);
  afterAll(() => removeDistBuild(app, started));

  async function start(
    name: string,
    extraEnv: Record<string, string>,
    listening = LISTENING,
  ): Promise<Started> {
    const dir = join(app, name);
    const list = join(dir, 'builtins.txt');
    const child = spawn(
      process.execPath,
      ['--import', join(repo, 'test/fixtures/builtin-list.mjs'), join(app, 'dist/src/main.js'), 'serve'],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HTTP_PORT: '0',
          BIND_ADDRESS: '127.0.0.1',
          WEBRTC_UDP_PORT: String(await freeUdpPort()),
          DATA_DIR: join(dir, 'data'),
          LOG_PRETTY: 'no',
          BUILTIN_LIST_FILE: list,
          ...extraEnv,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const s = { child, list, exited, output: () => out };
    started.push(s);
    await eventually(() => listening.test(out), 60_000, `${name} listening`);
    return s;
  }

  async function builtinsNow(s: Started): Promise<string[]> {
    rmSync(s.list, { force: true });
    s.child.kill('SIGUSR2');
    await eventually(() => existsSync(s.list), 10_000, 'the module list');
    return readFileSync(s.list, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('NativeModule '))
      .map((l) => l.slice('NativeModule '.length));
  }

  async function stop(s: Started): Promise<void> {
    process.kill(s.child.pid!, 'SIGTERM');
    expect(await s.exited, s.output()).toBe(0);
  }

  it('without TLS, idle with every surface on: no tls, https, http2, zlib or undici', async () => {
    const s = await start('plain', {});
    const loaded = await builtinsNow(s);
    expect(loaded).toContain('http'); // the list is real
    expect(NOT_AT_IDLE.filter((m) => loaded.includes(m))).toEqual([]);
    // Nor do a request and a WebSocket that offers compression with a forged token.
    const port = /"http":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(s.output())![1];
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chorus/v1/rtc?access_token=forged.token.here`, {
      perMessageDeflate: true,
    });
    const refused = await new Promise<string>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(`http ${res.statusCode}`));
      ws.once('close', (code) => resolve(`close ${code}`));
      ws.once('error', (err) => resolve(`error ${err.message}`));
    });
    expect(refused).not.toBe('close 1000');
    const after = await builtinsNow(s);
    expect(NOT_AT_IDLE.filter((m) => after.includes(m))).toEqual([]);
    await stop(s);
  }, 180_000);

  it('with LOG_PRETTY=yes, the pino transport (a worker thread, loaded then) writes pretty lines', async () => {
    const s = await start('pretty', { LOG_PRETTY: 'yes' }, /INFO.*chorus listening/);
    expect(await builtinsNow(s)).toContain('worker_threads');
    expect(s.output()).not.toMatch(/"msg":/);
    await stop(s);
  }, 180_000);

  it.runIf(hasTool('openssl', 'openssl'))(
    'with a certificate, the HTTPS listener loads tls at start and serves',
    async () => {
      const dir = mkdtempSync(join(app, 'tls-'));
      const { cert, key } = selfSignedCert(dir);
      const s = await start('tls', { SSL_CERT: cert, SSL_KEY: key, SSL_PORT: '0' });
      const loaded = await builtinsNow(s);
      expect(loaded).toContain('tls');
      expect(loaded).toContain('https');
      const m = /"https":"https:\/\/127\.0\.0\.1:(\d+)"/.exec(s.output());
      expect(m, s.output()).not.toBeNull();
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest(`https://127.0.0.1:${m![1]}/healthz`, { rejectUnauthorized: false }, (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      await stop(s);
    },
    180_000,
  );
});
