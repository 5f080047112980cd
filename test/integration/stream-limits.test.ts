import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';
import { selfSignedCert } from '../fixtures/self-signed.js';

describe('PLAY_WHITELIST', () => {
  it('refuses receivers from outside the list (403) and still accepts publishers', async () => {
    const t = await startTestServer({ stream: { playWhitelist: ['10.0.0.0/8', 'fd00::/8'] } });
    try {
      const pub = await TestSocket.open(`${t.wsUrl}/wl/k/publish`);
      for (const kind of ['receive', 'receive-clear-cache', 'probe']) {
        expect(await TestSocket.refusal(`${t.wsUrl}/wl/k/${kind}`)).toEqual({
          status: 403,
          body: 'Cannot play: Not whitelisted.',
        });
      }
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      expect(metrics).toMatch(/chorus_stream_refusals_total\{reason="not_whitelisted"\} 3/);
      pub.close();
    } finally {
      await t.close();
    }
  });

  it('accepts bare IPs, and IPv6 clients by CIDR', async () => {
    const v4 = await startTestServer({ stream: { playWhitelist: [' 127.0.0.1 '] } });
    const v6 = await startTestServer({
      http: { bindAddress: '::1' },
      stream: { playWhitelist: ['::1/128'] },
    });
    const v6no = await startTestServer({
      http: { bindAddress: '::1' },
      stream: { playWhitelist: ['fd00::/8'] },
    });
    try {
      (await TestSocket.open(`${v4.wsUrl}/a/k/receive`)).close();
      expect(v6.wsUrl).toMatch(/^ws:\/\/\[::1\]:/);
      (await TestSocket.open(`${v6.wsUrl}/a/k/receive`)).close();
      expect((await TestSocket.refusal(`${v6no.wsUrl}/a/k/receive`)).status).toBe(403);
    } finally {
      await v4.close();
      await v6.close();
      await v6no.close();
    }
  });
});

describe('MAX_IP_CONCURRENT_CONNECTIONS', () => {
  it('answers 429 past the limit, frees the slot when a connection ends, and honours the exemption list', async () => {
    const t = await startTestServer({ stream: { maxIpConcurrentConnections: 2 } });
    const exempt = await startTestServer({
      stream: { maxIpConcurrentConnections: 1, concurrentLimitWhitelist: ['127.0.0.0/8'] },
    });
    try {
      const a = await TestSocket.open(`${t.wsUrl}/lim/k/receive`);
      const b = await TestSocket.open(`${t.wsUrl}/lim/k/publish`);
      expect(await TestSocket.refusal(`${t.wsUrl}/lim/k/receive`)).toEqual({
        status: 429,
        body: 'Too many requests.',
      });
      // Refused requests (bad ids included) give their slot back.
      expect((await TestSocket.refusal(`${t.wsUrl}/lim/k/receive`)).status).toBe(429);
      a.close();
      await a.closed;
      await eventually(async () => {
        try {
          (await TestSocket.open(`${t.wsUrl}/lim/k/receive`)).close();
          return true;
        } catch {
          return false;
        }
      });
      b.close();
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      expect(metrics).toMatch(/chorus_stream_refusals_total\{reason="too_many_connections"\} 2/);

      const held = await Promise.all([1, 2, 3].map(() => TestSocket.open(`${exempt.wsUrl}/ex/k/receive`)));
      held.forEach((s) => s.close());
    } finally {
      await t.close();
      await exempt.close();
    }
  });
});

describe('TLS', () => {
  it('publishes and receives over wss', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-stream-tls-'));
    const { cert, key } = selfSignedCert(dir);
    const t = await startTestServer({ tls: { cert, key } });
    try {
      const wss = t.server.urls().https!.replace('https', 'wss');
      const opts = { rejectUnauthorized: false };
      const pub = await TestSocket.open(`${wss}/sec/k/publish`, {}, opts);
      const r = await TestSocket.open(`${wss}/sec/k/receive`, {}, opts);
      pub.ws.send(Buffer.from('over tls'));
      expect((await r.binaryCount(1))[0]!.toString()).toBe('over tls');
      pub.close();
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
