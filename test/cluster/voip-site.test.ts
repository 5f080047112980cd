import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { FakeSideSite } from '../fixtures/fake-side-site.js';
import { hasTool } from '../fixtures/system-tools.js';
import { SseClient } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';

// VOIP in side-site mode across two Chorus processes on one nats-server: the site's
// users call each other and share a room whichever node each request lands on.

const site = new FakeSideSite();
let cluster: Cluster;
const url = (i: number): string => cluster.nodes[i]!.url;
const streams: SseClient[] = [];

async function events(token: string, i: number): Promise<SseClient> {
  const s = await SseClient.open(`${url(i)}/messages?CSRFtoken=${token}`);
  streams.push(s);
  await s.next('pubkey', 10_000);
  return s;
}

const post = (i: number, path: string, token: string, form: Record<string, string>) =>
  fetch(`${url(i)}${path}`, {
    method: 'POST',
    headers: { CSRFToken: token, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  }).then(async (r) => ({ status: r.status, text: await r.text() }));

describe.skipIf(!hasTool('nats-server', 'nats-server'))('VOIP with a side site across nodes', () => {
  beforeAll(async () => {
    await site.start();
    site.users.set('tokAlice', 21).set('tokBob', 22);
    site.sendRooms.add(9);
    site.listenRooms.add(9);
    cluster = await startCluster({
      nodes: 2,
      env: { SITE_ENABLED: 'true', SITE_URL: site.url, SITE_ORIGIN: 'https://site.example' },
    });
  }, 60_000);

  afterAll(async () => {
    for (const s of streams) s.close();
    await cluster?.stop();
    await site.stop();
  });

  it('rings, accepts and ends a call placed on one node for a callee listening on the other', async () => {
    const [alice, bob] = await Promise.all([events('tokAlice', 0), events('tokBob', 1)]);
    expect(await post(0, '/newCall', 'tokAlice', { Destination: '22' })).toEqual({ status: 200, text: '' });
    expect((await bob.next('newCall', 10_000)).data).toBe('{"from": 21}');
    // Accepted on node 1 (the call is node 0's), hung up on node 1 by the caller.
    expect((await post(1, '/acceptCall', 'tokBob', { From: '21' })).status).toBe(200);
    expect((await alice.next('acceptedCall', 10_000)).data).toBe('{"from": 22}');
    expect((await post(1, '/endCall', 'tokAlice', { Destination: '22' })).status).toBe(200);
    expect((await alice.next('endCall', 10_000)).data).toBe('{"from": 22}');
    expect((await bob.next('endCall', 10_000)).data).toBe('{"from": 21}');
    expect((await post(0, '/rejectCall', 'tokBob', { From: '21' })).status).toBe(404);
  });

  it("shares the site's rooms: opened on one node, listed and heard on the other", async () => {
    const bob = await events('tokBob', 1);
    const ws = new WebSocket(`${url(0).replace(/^http/, 'ws')}/upRoom?CSRFtoken=tokAlice&roomID=9`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    expect(JSON.parse((await bob.next('newRoom', 10_000)).data) as unknown).toBeTypeOf('string');
    await eventually(
      async () => {
        const res = await fetch(`${url(1)}/listMembers?roomID=9`);
        if (res.status !== 200) return false;
        const members = (await res.json()) as { pubkey: string; mic: number }[];
        return members.length === 1 && members[0]!.pubkey === '21' && members[0]!.mic === 1;
      },
      10_000,
      'alice listed in room 9 on node 1',
    );
    // Mixed on node 0, heard through node 1.
    const listen = await fetch(`${url(1)}/joinRoom?CSRFtoken=tokBob&roomID=9&format=wav`, { method: 'POST' });
    expect(listen.status).toBe(200);
    const reader = listen.body!.getReader();
    let bytes = 0;
    while (bytes < 44 + 9600) bytes += (await reader.read()).value?.length ?? 0;
    await reader.cancel();
    ws.close();
  });
});
