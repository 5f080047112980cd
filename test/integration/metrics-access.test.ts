import { Writable } from 'node:stream';
import Fastify from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { serveMetrics } from '../../src/server/metrics-endpoint.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

// #11.14: /metrics behind a bearer token, or on its own listener.
const TOKEN = 'metrics-token-0123456789';

describe('METRICS_TOKEN', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ metrics: { token: TOKEN } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a scrape without a token: 401, JSON error, WWW-Authenticate: Bearer', async () => {
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(await res.json()).toEqual({
      error: {
        code: 'unauthenticated',
        message: 'metrics credential required: Authorization: Bearer <METRICS_TOKEN>',
      },
    });
  });

  it('refuses a wrong token, a token of another length and another scheme', async () => {
    for (const authorization of [
      `Bearer ${TOKEN.slice(0, -1)}x`,
      'Bearer short',
      `Basic ${TOKEN}`,
      'Bearer ',
    ]) {
      const res = await fetch(`${t.url}/metrics`, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect((await res.json()) as unknown).toMatchObject({ error: { code: 'unauthenticated' } });
    }
  });

  it('serves the metrics with the right token', async () => {
    const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    expect(await res.text()).toMatch(/^chorus_process_resident_memory_bytes \d+/m);
  });

  it('serves only the metrics named by ?name= (unknown names left out), behind the same token', async () => {
    const q =
      '?name=chorus_nodejs_eventloop_lag_seconds&name=chorus_nodejs_eventloop_lag_max_seconds&name=nope&name=chorus_voip_rooms';
    expect((await fetch(`${t.url}/metrics${q}`)).status).toBe(401);
    const res = await fetch(`${t.url}/metrics${q}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    expect(names).toEqual([
      'chorus_nodejs_eventloop_lag_seconds',
      'chorus_nodejs_eventloop_lag_max_seconds',
      'chorus_voip_rooms',
    ]);
    // The lag gauges are read from the loop's histogram (set by the first one's collect).
    expect(Number(/^chorus_nodejs_eventloop_lag_max_seconds (\S+)/m.exec(text)?.[1])).toBeGreaterThanOrEqual(
      0,
    );
    const none = await fetch(`${t.url}/metrics?name=nope`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(none.status).toBe(200);
    expect(await none.text()).toBe('');
  });

  it('leaves the other routes alone', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });
});

describe('METRICS_PORT', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ metrics: { port: 0, bindAddress: '127.0.0.1' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('serves /metrics on its own listener, and the main port answers 404 for it', async () => {
    const metricsUrl = t.server.urls().metrics;
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(metricsUrl).not.toBe(t.url);
    const res = await fetch(`${metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/# TYPE chorus_http_requests_total counter/);

    const main = await fetch(`${t.url}/metrics`);
    expect(main.status).toBe(404);
    expect(await main.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /metrics' } });
  });

  it('serves nothing else on the metrics listener', async () => {
    const res = await fetch(`${t.server.urls().metrics}/healthz`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /healthz' } });
  });

  it('the token applies on the metrics listener too', async () => {
    const guarded = await startTestServer({ metrics: { port: 0, bindAddress: '127.0.0.1', token: TOKEN } });
    try {
      const url = `${guarded.server.urls().metrics}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });
});

describe('the start-up notice', () => {
  /** The lines serveMetrics logs for a config, without binding anything. */
  function noticesFor(env: Record<string, string>): string[] {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ level: 'info' }, sink);
    serveMetrics(Fastify(), new Registry(), loadConfig({ env }), log);
    return lines.filter((l) => l.includes('metrics are public'));
  }

  it('says once that metrics are public on a non-loopback address, and not otherwise', () => {
    const open = noticesFor({ BIND_ADDRESS: '0.0.0.0' });
    expect(open).toHaveLength(1);
    expect(JSON.parse(open[0]!)).toMatchObject({ level: 40, address: '0.0.0.0', port: 8000 });
    expect(noticesFor({ BIND_ADDRESS: '0.0.0.0', METRICS_PORT: '9100' })).toHaveLength(1);
    expect(noticesFor({ BIND_ADDRESS: '127.0.0.1' })).toEqual([]);
    expect(noticesFor({ BIND_ADDRESS: '::', METRICS_TOKEN: TOKEN })).toEqual([]);
    expect(
      noticesFor({ BIND_ADDRESS: '::', METRICS_PORT: '9100', METRICS_BIND_ADDRESS: '127.0.0.1' }),
    ).toEqual([]);
    expect(noticesFor({ BIND_ADDRESS: '::', METRICS_ENABLED: 'NO' })).toEqual([]);
  });
});
