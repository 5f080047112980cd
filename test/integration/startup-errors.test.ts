import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runChorus, runChorusToExit } from '../fixtures/chorus-process.js';

// #11.12: what an operator gets wrong at start-up is one line and exit 2, like a config error.
const root = mkdtempSync(join(tmpdir(), 'chorus-startup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const dataDir = (name: string): string => mkdtempSync(join(root, `${name}-`));
const base = (): Record<string, string> => ({
  HTTP_PORT: '0',
  BIND_ADDRESS: '127.0.0.1',
  DATA_DIR: dataDir('d'),
});

/** Exit 2, the expected line on its own, and no stack anywhere in the output. */
function expectOneLine(r: { code: number | null; output: string }, line: RegExp): void {
  expect(r.code, r.output).toBe(2);
  expect(r.output).toMatch(line);
  expect(r.output).not.toMatch(/^\s+at /m);
}

describe('start-up failures exit 2 with one line', () => {
  it('HTTP port in use', async () => {
    const occupied: TcpServer = createTcpServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    const port = (occupied.address() as { port: number }).port;
    try {
      const r = await runChorusToExit({ ...base(), HTTP_PORT: String(port) });
      expectOneLine(
        r,
        new RegExp(
          `^chorus: cannot listen for HTTP on 127\\.0\\.0\\.1:${port}: the port is already in use \\(EADDRINUSE\\); set HTTP_PORT or BIND_ADDRESS$`,
          'm',
        ),
      );
    } finally {
      await new Promise((resolve) => occupied.close(resolve));
    }
  }, 60_000);

  it('a TLS file that is not PEM', async () => {
    const junk = join(root, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const r = await runChorusToExit({ ...base(), SSL_CERT: junk, SSL_KEY: junk, SSL_PORT: '0' });
    expectOneLine(r, /^ {2}SSL_CERT \(tls\.cert\) = ".*junk\.pem": not a PEM certificate/m);
    expect(r.output).toMatch(/^chorus: invalid configuration$/m);
  }, 60_000);

  it('a certificate without a key', async () => {
    const r = await runChorusToExit({ ...base(), SSL_CERT: join(root, 'cert.pem') });
    expectOneLine(r, /^ {2}SSL_CERT \(tls\.cert\) = .*set without SSL_KEY/m);
  }, 60_000);

  it('a data directory under a regular file', async () => {
    const file = join(root, 'plain-file');
    writeFileSync(file, 'x');
    const r = await runChorusToExit({ ...base(), DATA_DIR: join(file, 'data') });
    expectOneLine(
      r,
      /^chorus: cannot open the data directory ".*plain-file\/data": ENOTDIR.*; set DATA_DIR$/m,
    );
  }, 60_000);

  it('a bind address that is not an IP address', async () => {
    const r = await runChorusToExit({ ...base(), BIND_ADDRESS: 'not-an-address' });
    expectOneLine(r, /^ {2}BIND_ADDRESS \(http\.bindAddress\) = "not-an-address": expected an IP address/m);
  }, 60_000);

  it('a reversed WebRTC port range and a garbage EXTERNAL_IP', async () => {
    const r = await runChorusToExit({ ...base(), WEBRTC_PORT_RANGE: '50100-50000', EXTERNAL_IP: 'garbage' });
    expectOneLine(r, /^ {2}WEBRTC_PORT_RANGE \(webrtc\.portRange\) = "50100-50000": expected a range/m);
    expect(r.output).toMatch(/^ {2}EXTERNAL_IP \(network\.externalIp\) = "garbage": expected an IP address/m);
  }, 60_000);
});

describe('a DATA_DIR whose name has a dot', () => {
  it('starts, serves, and keeps its records across a restart', async () => {
    const dir = join(dataDir('dotted'), 'chorus.data');
    const env = { HTTP_PORT: '0', BIND_ADDRESS: '127.0.0.1', DATA_DIR: dir, SHUTDOWN_GRACE_SECONDS: '1' };
    const register = (url: string, cookie = ''): Promise<Response> =>
      fetch(`${url}/v1/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
        body: '{"username":"dotted-dir"}',
      });

    const first = await runChorus(env);
    let cookie: string;
    try {
      const reg = await register(first.url);
      expect(reg.status).toBe(200);
      cookie = (reg.headers.get('set-cookie') ?? '').split(';')[0]!;
      first.kill('SIGTERM');
      expect(await first.exited).toBe(0);
    } finally {
      first.kill('SIGKILL');
    }

    const second = await runChorus(env);
    try {
      // The name is still held: a stranger is refused, its holder's session still works.
      const stranger = await register(second.url);
      expect(stranger.status).toBe(200);
      expect(await stranger.json()).toEqual({ status: 'TAKEN', message: '' });
      expect((await fetch(`${second.url}/v1/user`, { headers: { cookie } })).status).toBe(200);
    } finally {
      second.kill('SIGKILL');
      await second.exited;
    }
  }, 90_000);
});
