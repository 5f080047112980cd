import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { exchange, NdcPublisher } from '../fixtures/ndc-peer.js';
import { startTestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';

// The test client itself (test/fixtures/ndc-peer.ts): other suites rely on it retrying
// after a refusal and on it never waiting without a deadline.

const toClose: Array<{ close(): void | Promise<void> }> = [];
afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
});

async function createRoom(url: string): Promise<string> {
  const res = await fetch(`${url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: 'admin' }),
  });
  return ((await res.json()) as { id: string }).id;
}

describe('NdcClient', () => {
  it('refused with 503, connects on its next try with the same client; a second connect is an error', async () => {
    const t = await startTestServer({
      webrtc: { bindAddress: '127.0.0.1', maxPeers: 1, peerTimeoutSeconds: 2 },
    });
    toClose.push(t);
    const room = await createRoom(t.url);
    const first = new NdcPublisher();
    toClose.push(first);
    expect((await first.publish(t.url, room, 'first')).status).toBe(200);
    first.start();

    const late = new NdcPublisher();
    toClose.push(late);
    const refused = await late.publish(t.url, room, 'late');
    expect(refused.status).toBe(503);

    // Room again: the same client tries again (its gathering finished the first time).
    first.close();
    await eventually(() => t.server.engine.sfu.stats().peers === 0, 10_000, 'the first leg to close');
    expect((await late.publish(t.url, room, 'late')).status).toBe(200);
    late.start();
    await eventually(() => t.server.engine.sfu.stats().publishedTracks === 2, 10_000, 'its tracks published');

    await expect(late.publish(t.url, room, 'late')).rejects.toThrow(/already answered/);
  }, 60_000);

  it('gives up on a server that never answers the offer, saying so', async () => {
    const silent: Server = createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    toClose.push({
      close: () =>
        new Promise<void>((resolve) => {
          silent.closeAllConnections();
          silent.close(() => resolve());
        }),
    });
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    await expect(exchange(url, '/webrtc/sdp/m/r/c/u/p/u/s/true', 'v=0\r\n', 300)).rejects.toThrow(
      'POST /webrtc/sdp/m/r/c/u/p/u/s/true: no answer within 300 ms',
    );

    const pub = new NdcPublisher();
    toClose.push(pub);
    pub.exchangeTimeoutMs = 300;
    await expect(pub.publish(url, 'r', 'u')).rejects.toThrow(/no answer within 300 ms/);
  }, 30_000);
});
