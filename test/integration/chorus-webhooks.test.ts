import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

const KEY = 'hook-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';

let ts: TestServer;
const receiver = new WebhookReceiver(KEY, SECRET);
const peers: NdcPublisher[] = [];
beforeAll(async () => {
  await receiver.start();
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`], webhookUrls: [`http://127.0.0.1:${receiver.port}/hook`] },
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1', peerTimeoutSeconds: 2 },
  });
});
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});
afterAll(async () => {
  await ts.close();
  await receiver.stop();
});

async function conferenceWith(user: string): Promise<{ room: string; pub: NdcPublisher }> {
  const res = await fetch(`${ts.url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: user }),
  });
  const room = ((await res.json()) as { id: string }).id;
  const pub = new NdcPublisher();
  peers.push(pub);
  expect((await pub.publish(ts.url, room, user)).status).toBe(200);
  pub.start();
  return { room, pub };
}

async function deliveries(result: string): Promise<number> {
  const text = await (await fetch(`${ts.url}/metrics`)).text();
  return Number(
    new RegExp(`^chorus_webhook_deliveries_total\\{result="${result}"\\} (\\S+)`, 'm').exec(text)?.[1],
  );
}

describe('webhooks', () => {
  it('sends signed room, participant and track events in order', { timeout: 90_000 }, async () => {
    const { room, pub } = await conferenceWith('alice');
    await eventually(
      () => receiver.of(room).filter((e) => e.startsWith('track_published')).length === 2,
      20_000,
      'tracks published',
    );
    const started = receiver.of(room);
    expect(started.slice(0, 2)).toEqual(['room_started', 'participant_joined:alice']);
    expect(started.slice(2).sort()).toEqual(['track_published:alice:audio', 'track_published:alice:video']);

    pub.close(); // the leg times out on the server (2 s): its tracks end, alice leaves
    await eventually(() => receiver.of(room).includes('participant_left:alice'), 20_000, 'alice left');
    const ended = receiver.of(room).slice(4);
    expect(ended.slice(-1)).toEqual(['participant_left:alice']);
    expect(ended.slice(0, -1).sort()).toEqual([
      'track_unpublished:alice:audio',
      'track_unpublished:alice:video',
    ]);
    // A conference lives until it is closed: here by the room service.
    const admin = await createAccessToken(KEY, SECRET, {
      grants: { roomCreate: true, roomAdmin: true },
      ttlSeconds: 60,
    });
    for (const [method, path] of [
      ['POST', '/rooms'],
      ['DELETE', `/rooms/${room}`],
    ] as const) {
      const res = await fetch(`${ts.url}/chorus/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${admin}`,
          ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
        },
        ...(method === 'POST' ? { body: JSON.stringify({ name: room }) } : {}),
      });
      expect(res.ok).toBe(true);
    }
    await eventually(() => receiver.of(room).includes('room_finished'), 20_000, 'room finished');
    expect(receiver.of(room).slice(-1)).toEqual(['room_finished']);
    const sent = receiver.events.filter((e) => e.room.name === room);
    expect(new Set(sent.map((e) => e.id)).size).toBe(sent.length);
    expect(sent.every((e) => typeof e.node === 'string' && e.node !== '')).toBe(true);
    expect(receiver.refused).toBe(0);
  });

  it(
    'retries with backoff while the receiver is down and delivers everything once it is back',
    { timeout: 90_000 },
    async () => {
      const port = receiver.port;
      await receiver.stop();
      const retriedBefore = await deliveries('retried');
      const { room } = await conferenceWith('bob');
      // Events wait in the queue, retried (the receiver refuses connections) ...
      await eventually(async () => (await deliveries('retried')) >= retriedBefore + 2, 20_000, 'retries');
      expect(receiver.of(room)).toEqual([]);
      // ... until it listens again on the same port.
      await receiver.start(port);
      await eventually(
        () => receiver.of(room).filter((e) => e.startsWith('track_published')).length === 2,
        30_000,
        'delivered after the receiver came back',
      );
      expect(receiver.of(room).slice(0, 2)).toEqual(['room_started', 'participant_joined:bob']);
      expect(await deliveries('failed')).toBe(0);
      expect(receiver.refused).toBe(0);
    },
  );
});

describe('webhook settings', () => {
  it('refuses webhook URLs without an API key to sign them, and non-http URLs', async () => {
    await expect(startTestServer({ chorus: { webhookUrls: ['http://127.0.0.1:9/hook'] } })).rejects.toThrow(
      /CHORUS_WEBHOOK_URLS.*CHORUS_API_KEYS|webhookUrls/,
    );
    await expect(
      startTestServer({ chorus: { apiKeys: [`${KEY}:${SECRET}`], webhookUrls: ['ftp://x'] } }),
    ).rejects.toThrow(/http\(s\) URLs/);
  });
});
