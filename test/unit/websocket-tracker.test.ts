import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerMetrics } from '../../src/server/metrics.js';
import { WebSocketTracker } from '../../src/server/websocket-tracker.js';

const servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    for (const c of s.clients) c.terminate();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/** A real WebSocket pair on 127.0.0.1: the server's end (to track) and the client's close code. */
async function pair(): Promise<{ server: WebSocket; clientClosed: Promise<number> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  servers.push(wss);
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const clientClosed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
  const server = await new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  return { server, clientClosed };
}

describe('WebSocketTracker', () => {
  it('closes every open socket with the stop code', async () => {
    const tracker = new WebSocketTracker(new ServerMetrics());
    const a = await pair();
    tracker.track('stream', a.server);
    await tracker.closeAll(1001, 'server shutting down', 5_000);
    expect(await a.clientClosed).toBe(1001);
    expect(tracker.size).toBe(0);
  });

  it('closes a socket that opens after the stop began (its upgrade passed the drain gate before)', async () => {
    const tracker = new WebSocketTracker(new ServerMetrics());
    await tracker.closeAll(1001, 'server shutting down', 5_000);
    const late = await pair();
    tracker.track('stream', late.server);
    expect(await late.clientClosed).toBe(1001);
    await expect.poll(() => tracker.size, { timeout: 10_000 }).toBe(0);
  });

  it('reports open and accepted sockets per surface when scraped, a closed one counted in the total only', async () => {
    const metrics = new ServerMetrics();
    const tracker = new WebSocketTracker(metrics);
    const [a, b, c] = [await pair(), await pair(), await pair()];
    tracker.track('signal', a.server);
    tracker.track('signal', b.server);
    tracker.track('voip', c.server);
    b.server.close(1000);
    await b.clientClosed;
    const scrape = async (): Promise<string> => metrics.registry.metrics();
    await expect.poll(scrape, { timeout: 10_000 }).toMatch(/^chorus_websockets_open\{surface="signal"\} 1$/m);
    const text = await scrape();
    expect(text).toMatch(/^chorus_websockets_open\{surface="voip"\} 1$/m);
    expect(text).toMatch(/^chorus_websockets_total\{surface="signal"\} 2$/m);
    expect(text).toMatch(/^chorus_websockets_total\{surface="voip"\} 1$/m);
    // Scraped again: the total is the same, not added to.
    expect(await scrape()).toMatch(/^chorus_websockets_total\{surface="signal"\} 2$/m);
  });
});
