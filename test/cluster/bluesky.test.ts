import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';
import { readJson } from '../fixtures/cluster-read.js';

// Blue Sky across three real Chorus processes sharing one nats-server, in secured mode
// (keys are stored records, so they must work on every node). Media does not cross nodes
// yet (issue "Cluster, part 2"): each node carries the legs made through it.

/** Rooms expire fast here (4 s, swept every second), so the expiry test runs in seconds. */
const ROOM_TTL_HOURS = 4 / 3600;

let cluster: Cluster;
let nc: NatsConnection;
const url = (i: number): string => cluster.nodes[i]!.url;
const publishers: NdcPublisher[] = [];
afterEach(() => {
  for (const p of publishers.splice(0)) p.close();
});

interface Created {
  id: string;
  admin_key: string;
  participant_key: string;
}

const call = (method: string, u: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(u, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

async function create(i: number, admin: string, ip = '192.0.2.20'): Promise<Response> {
  return call('PUT', `${url(i)}/webrtc/room`, { user_id: admin }, { 'x-forwarded-for': ip });
}

async function created(i: number, admin: string, ip?: string): Promise<Created> {
  const res = await create(i, admin, ip);
  expect(res.status).toBe(201);
  return (await res.json()) as Created;
}

const listed = (i: number): Promise<string[]> => readJson<string[]>(`${url(i)}/webrtc/room`);

/** The publisher legs a node carries, from its /metrics. */
async function publisherLegs(i: number): Promise<number> {
  const text = await (await fetch(`${url(i)}/metrics`)).text();
  return Number(/^chorus_sfu_peers\{role="publisher"\} (\S+)/m.exec(text)?.[1]);
}

function offerOf(pub: NdcPublisher): Promise<string> {
  return new Promise((resolve) => {
    pub.pc.onGatheringStateChange((s) => {
      if (s === 'complete') resolve(pub.pc.localDescription()!.sdp);
    });
    pub.pc.setLocalDescription();
  });
}

/**
 * Publishes `user` in `room` through node `i` with its participant key (the SDP route's
 * header), until the leg connects. As in the ndc-peer fixture, a leg whose DTLS handshake
 * lost the client's own race is rebuilt and tried again.
 */
async function publish(i: number, room: string, user: string, key: string): Promise<NdcPublisher> {
  for (let tries = 1; ; tries++) {
    const pub = new NdcPublisher();
    publishers.push(pub);
    const offer = await offerOf(pub);
    const res = await call(
      'POST',
      `${url(i)}/webrtc/sdp/m/${room}/c/${user}/p/${user}/s/true`,
      { type: 'offer', sdp: offer },
      { 'x-participant-key': key },
    );
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { type: string; sdp: string };
    const connected = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      pub.pc.onStateChange((s) => {
        if (s === 'connected' || s === 'failed' || s === 'closed') {
          clearTimeout(timer);
          resolve(s === 'connected');
        }
      });
    });
    try {
      pub.pc.setRemoteDescription(answer.sdp, 'answer');
    } catch (e) {
      if (!/without ICE transport/.test(String(e))) throw e;
    }
    if (await connected) {
      pub.start();
      return pub;
    }
    pub.close();
    if (tries >= 5) throw new Error(`no connection after ${tries} attempts`);
  }
}

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('Blue Sky across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      env: {
        TRUST_PROXY: '127.0.0.1',
        WEBRTC_BIND_ADDRESS: '127.0.0.1',
        BLUESKY_SECURE_ROOMS: 'yes',
        BLUESKY_MAX_OPEN_ROOMS_PER_IP: '2',
        BLUESKY_ROOM_CREATE_RATE_PER_MINUTE: '0',
        BLUESKY_JOIN_RATE_PER_MINUTE: '0',
        BLUESKY_ROOM_TTL_HOURS: String(ROOM_TTL_HOURS),
        // Only Blue Sky is under test; the other surfaces stay out of these processes.
        SIGNAL_ENABLED: 'no',
        VOIP_ENABLED: 'no',
        BEEP_ENABLED: 'no',
        STREAM_ENABLED: 'no',
      },
    });
    nc = await natsConnect({ servers: cluster.nats.url });
  }, 90_000);

  afterAll(async () => {
    for (const p of publishers.splice(0)) p.close();
    await nc?.close();
    await cluster?.stop();
  });

  it('lists, reads and closes from other nodes a room created on one; keys work on any node; closing ends the legs on every node', async () => {
    const room = await created(0, 'host', '192.0.2.21');
    expect(await listed(1)).toContain(room.id);
    const read = await fetch(`${url(2)}/webrtc/room/${room.id}`);
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: room.id, admin: 'host', publishers: [] });

    // A participant joins on node 2; the keys are checked on nodes 0 and 1.
    const joined = await call('POST', `${url(2)}/webrtc/room/${room.id}/join`, { user_id: 'guest' });
    expect(joined.status).toBe(201);
    const guestKey = ((await joined.json()) as { participant_key: string }).participant_key;
    expect((await call('POST', `${url(1)}/webrtc/room/${room.id}/join`, { user_id: 'guest' })).status).toBe(
      409,
    );
    const wrong = await call(
      'POST',
      `${url(1)}/webrtc/sdp/m/${room.id}/c/guest/p/guest/s/true`,
      { type: 'offer', sdp: 'v=0\r\n' },
      { 'x-participant-key': room.participant_key },
    );
    expect(wrong.status).toBe(403);

    const before = [await publisherLegs(0), await publisherLegs(1)];
    await publish(0, room.id, 'host', room.participant_key);
    await publish(1, room.id, 'guest', guestKey);
    // The gauge follows the server's side of the leg, which may settle a moment after the client's.
    await eventually(
      async () => (await publisherLegs(0)) === before[0]! + 1 && (await publisherLegs(1)) === before[1]! + 1,
      15_000,
      'one publisher leg on each of nodes 0 and 1',
    );
    const onNode0 = await readJson<{ publishers: string[] }>(`${url(0)}/webrtc/room/${room.id}`);
    // Every node lists the publishers of every node (media crosses nodes: sfu-relay.test.ts).
    expect(onNode0.publishers.sort()).toEqual(['guest', 'host']);

    // Subscribing on node 1 to the publisher on node 0 finds it there; a broken offer is
    // still a clean 400, never a crash.
    const across = await call(
      'POST',
      `${url(1)}/webrtc/sdp/m/${room.id}/c/guest/p/host/s/false`,
      { type: 'offer', sdp: 'v=0\r\n' },
      { 'x-participant-key': guestKey },
    );
    expect(across.status).toBe(400);

    // Closing needs the admin key on any node.
    expect((await call('DELETE', `${url(2)}/webrtc/room/${room.id}`)).status).toBe(401);
    expect(
      (await call('DELETE', `${url(2)}/webrtc/room/${room.id}`, undefined, { 'x-admin-key': guestKey }))
        .status,
    ).toBe(403);
    const closed = await call('DELETE', `${url(2)}/webrtc/room/${room.id}`, undefined, {
      'x-admin-key': room.admin_key,
    });
    expect(closed.status).toBe(204);

    // Node 2 carried no leg of it: the legs on nodes 0 and 1 end through the closed event.
    await eventually(
      async () => (await publisherLegs(0)) === before[0] && (await publisherLegs(1)) === before[1],
      10_000,
      'the legs on nodes 0 and 1 to close',
    );
    for (const i of [0, 1, 2]) {
      expect(await listed(i)).not.toContain(room.id);
      expect((await fetch(`${url(i)}/webrtc/room/${room.id}`)).status).toBe(404);
    }
  }, 90_000);

  it('releases an open-room slot on the creating node when another node closes the room', async () => {
    const ip = '198.51.100.30';
    const first = await created(0, 'capped', ip);
    await created(0, 'capped', ip);
    const refused = await create(0, 'capped', ip);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: string }).error).toMatch(/open rooms per address/);
    const closed = await call('DELETE', `${url(1)}/webrtc/room/${first.id}`, undefined, {
      'x-admin-key': first.admin_key,
    });
    expect(closed.status).toBe(204);
    await eventually(async () => (await create(0, 'capped', ip)).status === 201, 10_000, 'a slot again');
  });

  it('expires unused rooms on every node, and never a room with a publisher on another node', async () => {
    // Publishers on nodes 0 and 1: whichever node sweeps, one of them is on another node.
    const busy = [await created(0, 'busy-0', '203.0.113.40'), await created(1, 'busy-1', '203.0.113.41')];
    await publish(0, busy[0]!.id, 'busy-0', busy[0]!.participant_key);
    await publish(1, busy[1]!.id, 'busy-1', busy[1]!.participant_key);
    // Made after the publishers joined: every sweep that expires it judged the busy rooms too.
    const idle = await created(2, 'idle', '203.0.113.42');
    await eventually(async () => !(await listed(0)).includes(idle.id), 30_000, 'the idle room to expire');
    const after = await listed(2);
    expect(after).toContain(busy[0]!.id);
    expect(after).toContain(busy[1]!.id);
    expect(await publisherLegs(0)).toBeGreaterThanOrEqual(1);
    expect(await publisherLegs(1)).toBeGreaterThanOrEqual(1);
    // Its keys went with it, checked on a node that did not create it.
    const late = await call('DELETE', `${url(1)}/webrtc/room/${idle.id}`, undefined, {
      'x-admin-key': idle.admin_key,
    });
    expect(late.status).toBe(404);
    for (const n of cluster.nodes) expect(n.process.output()).not.toMatch(/sweep failed/);
  }, 90_000);

  it('drops malformed closed events off the bus (logged) and keeps the room and its legs', async () => {
    const room = await created(2, 'steady', '203.0.113.50');
    await publish(2, room.id, 'steady', room.participant_key);
    const legs = await publisherLegs(2);
    const subject = `chorus.bluesky.room.${room.id}.closed`;
    for (const data of [
      'not json',
      '[]',
      JSON.stringify({ id: room.id }),
      JSON.stringify({ id: 'another-room', reason: 'x' }),
      JSON.stringify({ id: `${room.id}.x`, reason: 'x' }),
      JSON.stringify({ id: room.id, reason: 'x'.repeat(1000) }),
    ]) {
      nc.publish(subject, data);
    }
    await nc.flush();
    await eventually(
      () => cluster.nodes.every((n) => n.process.output().includes('malformed closed event')),
      10_000,
      'every node to log the malformed events',
    );
    expect(await publisherLegs(2)).toBe(legs);
    const read = await readJson<{ publishers: string[] }>(`${url(2)}/webrtc/room/${room.id}`);
    expect(read.publishers).toEqual(['steady']);
  }, 60_000);
});
