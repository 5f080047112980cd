import { gzipSync } from 'node:zlib';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { subjectToken } from '../../src/ports/bus/bus.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { hasTool } from '../fixtures/system-tools.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { eventually } from '../fixtures/ws-client.js';

// The room service across two real Chorus processes sharing one nats-server: room records
// are in the store, participants are asked of every node, removals and deletes reach the
// node that holds the participant.

const KEY = 'cluster-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';

let cluster: Cluster;
let nc: NatsConnection;
let admin: string;
const receiver = new WebhookReceiver(KEY, SECRET);
const url = (i: number): string => cluster.nodes[i]!.url;
const peers: NdcPublisher[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

async function api(
  i: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url(i)}/chorus/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${admin}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

type Listed = { identity: string; node: string; tracks: unknown[] }[];
const participants = async (i: number, room: string): Promise<Listed> =>
  ((await api(i, 'GET', `/rooms/${room}/participants`)).body as { participants: Listed }).participants;

/** `user` publishing (audio and video) in the Blue Sky conference `room` through node `i`. */
async function publish(i: number, room: string, user: string): Promise<void> {
  const pub = new NdcPublisher();
  peers.push(pub);
  expect((await pub.publish(url(i), room, user)).status).toBe(200);
  pub.start();
}

async function blueSkyRoom(i: number, user: string): Promise<string> {
  const res = await fetch(`${url(i)}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: user }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('room service across nodes', () => {
  beforeAll(async () => {
    await receiver.start();
    cluster = await startCluster({
      nodes: 2,
      env: {
        CHORUS_API_KEYS: `${KEY}:${SECRET}`,
        CHORUS_WEBHOOK_URLS: `http://127.0.0.1:${receiver.port}/hook`,
        WEBRTC_BIND_ADDRESS: '127.0.0.1',
        BLUESKY_ROOM_CREATE_RATE_PER_MINUTE: '0',
        BLUESKY_JOIN_RATE_PER_MINUTE: '0',
        SIGNAL_ENABLED: 'no',
        VOIP_ENABLED: 'no',
        BEEP_ENABLED: 'no',
        STREAM_ENABLED: 'no',
      },
    });
    nc = await natsConnect({ servers: cluster.nats.url });
    admin = await createAccessToken(KEY, SECRET, {
      grants: { roomCreate: true, roomList: true, roomAdmin: true },
      ttlSeconds: 600,
    });
  }, 90_000);

  afterAll(async () => {
    for (const p of peers.splice(0)) p.close();
    await nc?.close();
    await cluster?.stop();
    await receiver.stop();
  });

  it('a room created on one node is listed, read, updated and deleted through the other', async () => {
    expect((await api(0, 'POST', '/rooms', { name: 'shared', metadata: 'a' })).status).toBe(201);
    expect((await api(1, 'POST', '/rooms', { name: 'shared' })).status).toBe(409);
    const listed = (await api(1, 'GET', '/rooms')).body as { rooms: { name: string }[] };
    expect(listed.rooms.map((r) => r.name)).toContain('shared');
    expect((await api(1, 'PATCH', '/rooms/shared', { metadata: 'b' })).status).toBe(200);
    expect((await api(0, 'GET', '/rooms/shared')).body).toMatchObject({ metadata: 'b', numParticipants: 0 });
    expect((await api(1, 'DELETE', '/rooms/shared')).status).toBe(204);
    expect((await api(0, 'GET', '/rooms/shared')).status).toBe(404);
  });

  it("lists participants of every node, removes one on another node, and a delete ends the room's legs everywhere", async () => {
    const room = await blueSkyRoom(0, 'alice');
    expect((await api(0, 'POST', '/rooms', { name: room })).status).toBe(201);
    await publish(0, room, 'alice');
    await publish(1, room, 'bob');
    const byNode = (list: Listed): string =>
      list
        .map((p) => `${p.identity}@${p.node}`)
        .sort()
        .join();
    const [n0, n1] = [cluster.nodes[0]!.id, cluster.nodes[1]!.id];
    await eventually(
      async () => byNode(await participants(1, room)) === `alice@${n0},bob@${n1}`,
      20_000,
      'alice on node 0 and bob on node 1, listed through node 1',
    );
    expect(byNode(await participants(0, room))).toBe(`alice@${n0},bob@${n1}`);

    // alice is on node 0; the removal is asked of node 1.
    expect((await api(1, 'DELETE', `/rooms/${room}/participants/alice`)).status).toBe(204);
    await eventually(
      async () => byNode(await participants(0, room)) === `bob@${n1}`,
      20_000,
      'alice removed',
    );

    // bob is on node 1; the delete is asked of node 0.
    expect((await api(0, 'DELETE', `/rooms/${room}`)).status).toBe(204);
    const metricsOf = async (i: number): Promise<number> =>
      Number(
        /^chorus_sfu_peers\{role="publisher"\} (\S+)/m.exec(
          await (await fetch(`${url(i)}/metrics`)).text(),
        )?.[1],
      );
    await eventually(async () => (await metricsOf(1)) === 0, 20_000, "bob's leg on node 1 closed");
  });

  it('drops malformed and forged bus messages and keeps answering', async () => {
    const room = await blueSkyRoom(1, 'carol');
    expect((await api(1, 'POST', '/rooms', { name: room })).status).toBe(201);
    await publish(1, room, 'carol');
    const n1 = cluster.nodes[1]!.id;
    await eventually(async () => (await participants(0, room)).length === 1, 20_000, 'carol listed');

    const node = `chorus.node.${subjectToken(n1)}`;
    for (const junk of ['not json', '{"room":5}', '{"room":"../x"}', '[]']) {
      await expect(nc.request(`${node}.chorus.participants`, junk, { timeout: 1500 })).rejects.toThrow();
    }
    for (const junk of ['not json', JSON.stringify({ room }), JSON.stringify({ room, identity: '' })]) {
      await expect(nc.request(`${node}.chorus.remove`, junk, { timeout: 1500 })).rejects.toThrow();
    }
    // A closed event whose subject and body name different rooms closes nothing.
    nc.publish(`chorus.native.room.other.closed`, JSON.stringify({ room }));
    nc.publish(`chorus.native.room.${subjectToken(room)}.closed`, gzipSync('x'));
    await nc.flush();
    // The node still answers, carol is still there.
    const answer = await nc.request(`${node}.chorus.participants`, JSON.stringify({ room }), {
      timeout: 5000,
    });
    expect(
      answer.json<{ participants: { identity: string }[] }>().participants.map((p) => p.identity),
    ).toEqual(['carol']);
    expect((await participants(0, room)).map((p) => p.identity)).toEqual(['carol']);
  });

  it('sends each event once: participant and track events from the node where they happened, room_started and room_finished from one node', async () => {
    const room = await blueSkyRoom(0, 'dave');
    expect((await api(0, 'POST', '/rooms', { name: room })).status).toBe(201);
    await publish(0, room, 'dave');
    await publish(1, room, 'erin');
    const [n0, n1] = [cluster.nodes[0]!.id, cluster.nodes[1]!.id];
    const of = (event: string) => receiver.events.filter((e) => e.room.name === room && e.event === event);
    const events = (): string[] =>
      receiver.events
        .filter((e) => e.room.name === room && e.event !== 'room_started')
        .map((e) => `${e.event}:${e.participant?.identity}:${e.track?.kind ?? ''}@${e.node}`)
        .sort();
    const expected = [
      `participant_joined:dave:@${n0}`,
      `participant_joined:erin:@${n1}`,
      `track_published:dave:audio@${n0}`,
      `track_published:dave:video@${n0}`,
      `track_published:erin:audio@${n1}`,
      `track_published:erin:video@${n1}`,
    ];
    await eventually(() => expected.every((e) => events().includes(e)), 20_000, "both nodes' events");
    expect(events()).toEqual(expected);
    // Both nodes carry part of the room; it started once.
    expect(of('room_started').map((e) => e.node)).toEqual([n0]);

    // Deleted: both nodes close their part, both send their participant's leaving, one the end.
    expect((await api(1, 'DELETE', `/rooms/${room}`)).status).toBe(204);
    await eventually(
      () => of('participant_left').length === 2 && of('room_finished').length === 1,
      20_000,
      'both left, the room finished',
    );
    expect(of('room_started')).toHaveLength(1);
    expect(receiver.refused).toBe(0);
  });
});
