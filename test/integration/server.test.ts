import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';
import { selfSignedCert } from '../fixtures/self-signed.js';
import { runChorus, runChorusToExit } from '../fixtures/chorus-process.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { createSocket } from 'node:dgram';

/**
 * Plain REST routes need no socket: they are driven through inject. The health servers
 * run with a 1 s request deadline, which an injected request must never trip (its
 * stand-in socket never completes and cannot be destroyed: the deadline once threw on it).
 */
const INJECTED = { http: { requestTimeoutSeconds: 1 } };
const get = (t: TestServer, url: string) => t.server.app.inject({ method: 'GET', url });

describe('health, readiness, metrics', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(INJECTED);
  });
  afterAll(async () => {
    await t.close();
  });

  it('serves /healthz and /readyz with every component up', async () => {
    expect((await get(t, '/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await get(t, '/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({
      ready: true,
      draining: false,
      components: {
        listeners: true,
        store: true,
        signal: true,
        stream: true,
        bluesky: true,
        voip: true,
        beep: true,
        chorus: true,
      },
      // One node is a cluster of itself (docs/cluster.md).
      details: {
        cluster: { node: t.server.engine.ports.nodeId, nodes: 1, ids: [t.server.engine.ports.nodeId] },
      },
    });
  });

  it('GET /cluster/nodes lists this node alone (admin only: 403 without ADMIN_TOKEN)', async () => {
    expect((await get(t, '/cluster/nodes')).statusCode).toBe(403);
    const admin = await startTestServer({ ...INJECTED, admin: { token: 'server-test-admin-0123456789' } });
    try {
      const res = await admin.server.app.inject({
        method: 'GET',
        url: '/cluster/nodes',
        headers: { authorization: 'Bearer server-test-admin-0123456789' },
      });
      expect(res.statusCode).toBe(200);
      const body = res.json<{
        self: string;
        nodes: Array<{ id: string; protocol: number; heardMsAgo: number }>;
      }>();
      expect(body.self).toBe(admin.server.engine.ports.nodeId);
      expect(body.nodes.map((n) => n.id)).toEqual([body.self]);
      expect(body.nodes[0]).toMatchObject({ protocol: 1, heardMsAgo: 0, httpUrl: admin.url });
    } finally {
      await admin.close();
    }
  });

  it('serves Prometheus metrics: process, HTTP by route and status, WebSockets by surface', async () => {
    await get(t, '/healthz');
    await get(t, '/no-such-route');
    const res = await get(t, '/metrics');
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const text = res.body;
    expect(text).toMatch(/^chorus_process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^chorus_cluster_nodes 1$/m);
    expect(text).toMatch(/chorus_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    expect(text).toMatch(/chorus_http_requests_total\{method="GET",route="unmatched",status="404"\} \d+/);
    expect(text).toMatch(/# TYPE chorus_websockets_open gauge/);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await get(t, '/nope?x=1');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /nope' } });
  });

  it('lets an injected request outlive the request deadline without an error', async () => {
    // The deadline (1 s here) used to fire on injected requests, which never complete,
    // and throw from its timer: an uncaught exception (Vitest reports it and fails the
    // run). Time has to pass for that; then the server must still answer.
    const started = Date.now();
    expect((await get(t, '/healthz')).statusCode).toBe(200);
    await eventually(() => Date.now() - started > 2500, 10_000, 'past the deadline');
    expect((await get(t, '/healthz')).statusCode).toBe(200);
  });

  it('serves the Signal page', async () => {
    const page = await get(t, '/signal/');
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<title>Chorus · Signal call<\/title>/);
    expect((await get(t, '/signal/main.js')).headers['content-type']).toMatch(/javascript/);
  });
});

describe('surfaces by config', () => {
  it('can disable a surface and move it under another prefix', async () => {
    const off = await startTestServer({ ...INJECTED, signal: { enabled: false } });
    const moved = await startTestServer({ ...INJECTED, signal: { prefixes: ['/sig'] } });
    try {
      expect((await get(off, '/healthcheck')).statusCode).toBe(404);
      expect((await get(off, '/readyz')).json()).toMatchObject({
        components: { listeners: true, store: true },
      });
      expect((await get(moved, '/sig/healthcheck')).statusCode).toBe(200);
      expect((await get(moved, '/healthcheck')).statusCode).toBe(404);
    } finally {
      await off.close();
      await moved.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('is not ready while draining, and closes WebSockets with 1001', async () => {
    const t = await startTestServer({ admin: { open: true } });
    const reg = await fetch(`${t.url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":"drain-a"}',
    });
    const cookie = (reg.headers.get('set-cookie') ?? '').split(';')[0]!;
    const s = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
    t.server.readiness.drain();
    expect((await fetch(`${t.url}/readyz`)).status).toBe(503);
    await t.close();
    expect(await s.closed).toEqual({ code: 1001, reason: 'server shutting down' });
  });

  it('the real process exits 0 on SIGTERM after closing sockets with 1001', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chorus-proc-'));
    const p = await runChorus({
      HTTP_PORT: '0',
      BIND_ADDRESS: '127.0.0.1',
      DATA_DIR: dataDir,
      SHUTDOWN_GRACE_SECONDS: '3',
    });
    try {
      const reg = await fetch(`${p.url}/v1/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"username":"proc-a"}',
      });
      const cookie = (reg.headers.get('set-cookie') ?? '').split(';')[0]!;
      const s = await TestSocket.open(`${p.url.replace('http', 'ws')}/v1/connect`, { cookie });
      p.kill('SIGTERM');
      expect(await s.closed).toEqual({ code: 1001, reason: 'server shutting down' });
      expect(await p.exited).toBe(0);
      expect(p.output()).toMatch(/"msg":"stopped"/);
    } finally {
      p.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('the real process refuses to start on bad config, one line per bad key', async () => {
    const r = await runChorusToExit({ HTTP_PORT: 'abc', SIGNAL_RATE_LIMIT: '0' });
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/invalid configuration/);
    expect(r.output).toMatch(/HTTP_PORT \(http\.port\) = "abc": expected an integer from 0 to 65535/);
    expect(r.output).toMatch(/SIGNAL_RATE_LIMIT \(signal\.rateLimitPerSecond\) = "0"/);
  });

  it('refuses to start when the WebRTC UDP port is taken, instead of aborting later', async () => {
    const taken = createSocket('udp4');
    const port = await freeUdpPort();
    await new Promise<void>((resolve) => taken.bind(port, '127.0.0.1', () => resolve()));
    try {
      const r = await runChorusToExit({
        HTTP_PORT: '0',
        BIND_ADDRESS: '127.0.0.1',
        WEBRTC_UDP_PORT: String(port),
        WEBRTC_BIND_ADDRESS: '127.0.0.1',
        DATA_DIR: mkdtempSync(join(tmpdir(), 'chorus-udp-')),
      });
      // One line and exit 2, as every start-up failure an operator can fix (#11.12).
      expect(r.code).toBe(2);
      expect(r.output).toMatch(
        new RegExp(`^chorus: WebRTC UDP port 127\\.0\\.0\\.1:${port} cannot be used \\(EADDRINUSE\\)`, 'm'),
      );
      expect(r.output).not.toMatch(/^\s+at /m);
    } finally {
      taken.close();
    }
  });
});

describe('TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-tls-'));
  let t: TestServer;
  beforeAll(async () => {
    const { cert, key } = selfSignedCert(dir, 'first');
    t = await startTestServer({ tls: { cert, key, reloadSeconds: 1 } });
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const peerCn = (port: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        const cn = s.getPeerCertificate().subject.CN;
        s.end();
        resolve(Array.isArray(cn) ? cn.join() : (cn ?? ''));
      });
      s.on('error', reject);
    });

  it('serves the same routes over HTTPS and sets Secure cookies there', async () => {
    const https = t.server.urls().https!;
    expect(https).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
      const req = httpsRequest(
        `${https}/v1/register`,
        { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } },
        (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, cookie: String(r.headers['set-cookie']?.[0] ?? '') });
        },
      );
      req.on('error', reject);
      req.end('{"username":"tls-alice"}');
    });
    expect(res.status).toBe(200);
    expect(res.cookie).toMatch(/; Secure/);
    const s = await TestSocket.open(
      `${https.replace('https', 'wss')}/v1/connect`,
      { cookie: res.cookie.split(';')[0]! },
      { rejectUnauthorized: false },
    );
    s.send({ target: 'tls-alice', type: 'self', payload: 1 });
    expect(JSON.parse(await s.next()).originator).toBe('tls-alice');
    s.close();
  });

  it('reloads a renewed certificate without a restart', async () => {
    const port = Number(new URL(t.server.urls().https!).port);
    expect(await peerCn(port)).toBe('first');
    selfSignedCert(dir, 'renewed');
    await eventually(async () => (await peerCn(port)) === 'renewed', 8000, 'the renewed certificate');
  });
});
