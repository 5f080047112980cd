import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { NdcPublisher, NdcSubscriber } from '../fixtures/ndc-peer.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';

const toClose: Array<{ close(): void | Promise<void> }> = [];
afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
});

async function server(webrtc: Record<string, unknown>): Promise<TestServer> {
  const t = await startTestServer({ webrtc: { bindAddress: '127.0.0.1', peerTimeoutSeconds: 2, ...webrtc } });
  toClose.push(t);
  return t;
}

async function createRoom(t: TestServer): Promise<string> {
  const res = await fetch(`${t.url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: 'admin' }),
  });
  return ((await res.json()) as { id: string }).id;
}

/** An offer as the original's clients post it; refused before its SDP is even read. */
const postOffer = (t: TestServer, room: string, user: string, peer: string, sender: boolean) =>
  fetch(`${t.url}/webrtc/sdp/m/${room}/c/${user}/p/${peer}/s/${sender}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'offer', sdp: 'v=0\r\n' }),
  });

const readyz = async (t: TestServer) => (await fetch(`${t.url}/readyz`)).status;

const refusedTotal = async (t: TestServer) =>
  Number(/^chorus_sfu_peers_refused_total (\d+)/m.exec(await (await fetch(`${t.url}/metrics`)).text())?.[1]);

/** Keeps the (shared, in-process) event loop busy for `ms`, yielding briefly every 120 ms. */
async function saturate(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const slice = Date.now() + 120;
    while (Date.now() < slice) {
      /* busy: a saturated forwarding loop */
    }
    await new Promise((r) => setImmediate(r));
  }
}

describe('SFU admission', () => {
  it('refuses peers past WEBRTC_MAX_PEERS with 503 and Retry-After, keeps serving the others, admits again once one leaves', async () => {
    const t = await server({ maxPeers: 2 });
    const room = await createRoom(t);
    const pub = new NdcPublisher();
    toClose.push(pub);
    expect((await pub.publish(t.url, room, 'pub')).status).toBe(200);
    pub.start();
    const first = new NdcSubscriber();
    toClose.push(first);
    expect((await first.subscribe(t.url, room, 'first', 'pub')).status).toBe(200);

    const refused = await postOffer(t, room, 'second', 'pub', false);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(((await refused.json()) as { error: string }).error).toMatch(
      /peer limit reached \(2 peer connections\)/,
    );
    expect(await refusedTotal(t)).toBe(1);

    // Beep is refused at the door too, before the WebSocket upgrade.
    const beep = new WebSocket(`${t.wsUrl}/connect`, {
      headers: { 'X-User-Claim': JSON.stringify({ userid: 'carol', clientid: 'web' }) },
    });
    const answer = await new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
      beep.once('unexpected-response', (_req, res) =>
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string }),
      );
      beep.once('open', () => reject(new Error('upgraded past the peer limit')));
    });
    expect(answer).toEqual({ status: 503, retryAfter: '5' });

    // The admitted subscriber is untouched.
    const n = first.videoPackets.length;
    await eventually(() => first.videoPackets.length > n + 20, 5000, 'media to the admitted subscriber');

    // One leaves; once its leg is gone, the next is admitted.
    first.close();
    await eventually(() => t.server.engine.sfu.stats().peers === 1, 10_000, 'the leg to close');
    const second = new NdcSubscriber();
    toClose.push(second);
    expect((await second.subscribe(t.url, room, 'second', 'pub')).status).toBe(200);
    await eventually(() => second.videoPackets.length > 10, 5000, 'media to the second subscriber');
  }, 30_000);

  it('refuses new peers while the event loop is saturated, and admits them again when it recovers', async () => {
    const t = await server({ overloadBusyPercent: 90 });
    const room = await createRoom(t);
    // Busy for longer than the guard's 3 s window, and the join is tried while it still is:
    // once /readyz (the same check) says the server is overloaded, not after a guessed time.
    const busy = saturate(6000);
    await eventually(async () => (await readyz(t)) === 503, 10_000, 'the guard to see the load');
    const refused = await postOffer(t, room, 'late', 'late', true);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(((await refused.json()) as { error: string }).error).toMatch(
      /server overloaded: its event loop is \d+ % busy \(limit 90 %\)/,
    );
    const utilization = /^chorus_event_loop_utilization (\S+)/m.exec(
      await (await fetch(`${t.url}/metrics`)).text(),
    );
    expect(Number(utilization?.[1])).toBeGreaterThan(0.9);
    await busy;
    // Idle again: once the window's samples are quiet the server takes peers.
    await eventually(async () => (await readyz(t)) === 200, 15_000, 'the load to pass');
    const pub = new NdcPublisher();
    toClose.push(pub);
    expect((await pub.publish(t.url, room, 'late')).status).toBe(200);
    expect(await refusedTotal(t)).toBe(1);
  }, 40_000);
});
