import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

/**
 * deploy/healthcheck.mjs, the image's HEALTHCHECK: it finds the HTTP listener from the
 * same variables the server reads and exits 0 only when /healthz answers 200.
 */
const script = join(import.meta.dirname, '../../deploy/healthcheck.mjs');

function runCheck(env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env } });
    child.once('exit', (code) => resolve(code ?? -1));
  });
}

describe('the image HEALTHCHECK script', () => {
  let t: TestServer;
  let port: string;
  let failing: Server;
  let failingPort: string;

  beforeAll(async () => {
    t = await startTestServer();
    port = new URL(t.url).port;
    // Something that listens but is not healthy.
    failing = createHttpServer((_req, res) => res.writeHead(503).end());
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    failingPort = String((failing.address() as AddressInfo).port);
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((resolve) => failing?.close(resolve));
  });

  it('exits 0 against a running Chorus, on HTTP_PORT, CHORUS_HTTP_PORT or LISTEN', async () => {
    expect(await runCheck({ HTTP_PORT: port })).toBe(0);
    expect(await runCheck({ CHORUS_HTTP_PORT: port })).toBe(0);
    expect(await runCheck({ LISTEN: `127.0.0.1:${port}`, HTTP_PORT: '1' })).toBe(0);
    expect(await runCheck({ LISTEN: `:${port}` })).toBe(0);
    expect(await runCheck({ HTTP_PORT: port, BIND_ADDRESS: '0.0.0.0' })).toBe(0);
  });

  it('exits 1 when /healthz is not 200 or nothing listens', async () => {
    expect(await runCheck({ HTTP_PORT: failingPort })).toBe(1);
    const closed = createHttpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = String((closed.address() as AddressInfo).port);
    await new Promise((resolve) => closed.close(resolve));
    expect(await runCheck({ HTTP_PORT: closedPort })).toBe(1);
  });
});
