import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { TestSocket } from '../fixtures/ws-client.js';

const run = promisify(execFile);
const repo = process.cwd();

/**
 * The production install, as a user (or the Dockerfile) does it: `npm run build`'s output
 * and the lockfile in a folder outside the checkout (so nothing resolves into the
 * checkout's node_modules), `npm ci --omit=dev` there, then `node dist/src/main.js`.
 *
 * Fair and fast: the install is a real `npm ci` of the committed lockfile (integrity
 * checked, the allow-listed install scripts run); `--prefer-offline` only lets npm take
 * the tarballs from its cache, which the checkout's own install filled, instead of the
 * network. The build goes to the temp folder too, never into the shared dist/.
 */
describe('production build: npm ci --omit=dev, then node dist/src/main.js', () => {
  let app: string;
  let child: ChildProcess | undefined;
  let out = '';
  let url = '';

  beforeAll(async () => {
    app = mkdtempSync(join(tmpdir(), 'chorus-prod-'));
    await run(process.execPath, ['scripts/build-dist.mjs', join(app, 'dist')], { cwd: repo });
    mkdirSync(app, { recursive: true });
    copyFileSync(join(repo, 'package.json'), join(app, 'package.json'));
    copyFileSync(join(repo, 'package-lock.json'), join(app, 'package-lock.json'));
    await run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: app,
      env: { ...process.env, npm_config_loglevel: 'error' },
    });
    const udp = String(await freeUdpPort());
    // LOG_PRETTY=yes without pino-pretty (a dev dependency) must fall back to JSON lines.
    child = spawn(process.execPath, ['dist/src/main.js', 'serve'], {
      cwd: app,
      env: {
        PATH: process.env.PATH ?? '',
        HTTP_PORT: '0',
        BIND_ADDRESS: '127.0.0.1',
        WEBRTC_UDP_PORT: udp,
        DATA_DIR: join(app, 'data'),
        LOG_PRETTY: 'yes',
        NODE_ENV: 'production',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "chorus listening" within 60 s:\n${out}`)), 60_000);
      const onData = (d: Buffer): void => {
        out += d.toString();
        const m = /"http":"(http:\/\/[^"]+)".*"msg":"chorus listening"/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child!.stdout!.on('data', onData);
      child!.stderr!.on('data', onData);
      child!.once('exit', (code) => reject(new Error(`exited ${code} before listening:\n${out}`)));
    });
  }, 240_000);

  afterAll(() => {
    child?.kill('SIGKILL');
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('installs no development dependency', () => {
    for (const dev of ['tsx', 'esbuild', 'pino-pretty', 'typescript', 'vitest']) {
      expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    }
    expect(existsSync(join(app, 'node_modules', 'node-datachannel'))).toBe(true);
  });

  it('logs JSON with one warning when LOG_PRETTY asks for pino-pretty', () => {
    expect(out).toMatch(/"msg":"LOG_PRETTY: pino-pretty is not installed/);
  });

  it('answers /healthz and serves the built pages, docs and Beep', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const page = await fetch(`${url}/signal/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    expect((await fetch(`${url}/signal/main.js`)).status).toBe(200);
    expect((await fetch(`${url}/docs/README.md`)).status).toBe(200);
    // beep.proto is read at start-up by the Beep surface; a missing one fails there.
    expect(out).not.toMatch(/ENOENT/);
  });

  it('registers a Signal user who connects and gets her own message back', async () => {
    const reg = await fetch(`${url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":"prod-alice"}',
    });
    expect(reg.status).toBe(200);
    const cookie = (reg.headers.get('set-cookie') ?? '').split(';')[0]!;
    const s = await TestSocket.open(`${url.replace('http', 'ws')}/v1/connect`, { cookie });
    s.send({ target: 'prod-alice', type: 'note-to-self', payload: 'from dist' });
    expect(JSON.parse(await s.next())).toMatchObject({ originator: 'prod-alice', payload: 'from dist' });
    s.close();
    await s.closed;
  });

  it('exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
