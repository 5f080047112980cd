import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { chorusApi, ofType, RtcClient, videoOf, type Msg } from '../fixtures/rtc-client.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';
import { nativeClusterEnv } from '../fixtures/native-cluster-env.js';

// Native signalling across two real Chorus processes sharing one nats-server: a
// participant on each node sees the other's joins, tracks, mutes and data (the room feed
// on chorus.rtc.room.<room>) and receives the other's media (the SFU relay).

const KEY = 'rtc-cluster-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true };

let cluster: Cluster;
let nc: NatsConnection;
let admin: string;
const clients: RtcClient[] = [];
const url = (i: number): string => cluster.nodes[i]!.url;
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

async function join(i: number, room: string, identity: string): Promise<{ client: RtcClient; join: Msg }> {
  const token = await createAccessToken(KEY, SECRET, { room, identity, grants: MEMBER, ttlSeconds: 600 });
  const r = await RtcClient.connect(url(i), token);
  clients.push(r.client);
  return r;
}

const api = async (i: number, method: string, path: string, body?: unknown): Promise<number> =>
  (await chorusApi(url(i), admin, method, path, body)).status;

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('native signalling across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 2,
      env: nativeClusterEnv(KEY, SECRET),
    });
    nc = await natsConnect({ servers: cluster.nats.url });
    admin = await createAccessToken(KEY, SECRET, {
      grants: { roomCreate: true, roomList: true, roomAdmin: true },
      ttlSeconds: 600,
    });
  }, 90_000);

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await nc?.close();
    await cluster?.stop();
  });

  it('a participant on each node sees the other join, publish, mute and send data, and receives their media', async () => {
    expect(await api(0, 'POST', '/rooms', { name: 'x1' })).toBe(201);
    const [n0, n1] = [cluster.nodes[0]!.id, cluster.nodes[1]!.id];
    const a = await join(0, 'x1', 'alice');
    await a.client.publish();
    const b = await join(1, 'x1', 'bob');
    // Bob's join lists alice, on node 0, with her tracks.
    const others = b.join.others as Array<{ identity: string; node: string; tracks: Array<{ id: string }> }>;
    expect(others.map((o) => `${o.identity}@${o.node}`)).toEqual([`alice@${n0}`]);
    expect(others[0]!.tracks.map((t) => t.id).sort()).toEqual(['alice-audio', 'alice-video']);
    // Alice hears of bob joining on node 1, then of his tracks.
    const joined = await a.client.wait(ofType('participantJoined'), 20_000);
    expect(joined.participant).toMatchObject({ identity: 'bob', node: n1, name: '' });
    await b.client.publish();
    await a.client.wait(videoOf('bob'), 20_000);

    // Media both ways across the relay.
    const atBob = await b.client.subscribe('alice');
    const atAlice = await a.client.subscribe('bob');
    await eventually(
      () => atBob.videoPackets.length > 20 && atAlice.videoPackets.length > 20,
      30_000,
      'media both ways',
    );

    // The room service, through node 1, mutes alice's video on node 0: both are told.
    expect(
      await api(1, 'POST', '/rooms/x1/participants/alice/tracks/alice-video/mute', { muted: true }),
    ).toBe(204);
    const muted = { identity: 'alice', trackId: 'alice-video', muted: true, byServer: true };
    expect(await a.client.wait(ofType('trackMuted'), 20_000)).toMatchObject(muted);
    expect(await b.client.wait(ofType('trackMuted'), 20_000)).toMatchObject(muted);

    // Data from node 1 to alice only, and from the room service through node 0 to everyone.
    expect(await b.client.request({ type: 'data', payload: 'hi alice', to: ['alice'] })).toMatchObject({
      type: 'ok',
    });
    expect(await a.client.wait(ofType('data'), 20_000)).toMatchObject({ from: 'bob', payload: 'hi alice' });
    expect(await api(0, 'POST', '/rooms/x1/data', { data: 'to all' })).toBe(204);
    await b.client.wait(
      ofType('data', (m) => m.payload === 'to all'),
      20_000,
    );
    await a.client.wait(
      ofType('data', (m) => m.payload === 'to all'),
      20_000,
    );

    // Bob leaves: alice, on the other node, hears it.
    b.client.socket.send({ type: 'leave' });
    expect(await a.client.wait(ofType('participantLeft'), 20_000)).toMatchObject({ identity: 'bob' });
  });

  it('the same identity joining on the other node replaces the first session; forged feed messages are dropped', async () => {
    const first = await join(0, 'x2', 'carol');
    const watcher = await join(0, 'x2', 'dave');
    // Not JSON, the wrong shape, and a message naming another room than its subject.
    nc.publish('chorus.rtc.room.x2', 'not json');
    nc.publish(
      'chorus.rtc.room.x2',
      JSON.stringify({ room: 'x2', node: 'n', event: { type: 'participantJoined' } }),
    );
    nc.publish(
      'chorus.rtc.room.x2',
      JSON.stringify({ room: 'other', node: 'n', event: { type: 'data', payload: 'forged' } }),
    );
    const second = await join(1, 'x2', 'carol');
    expect((await first.client.socket.closed).code).toBe(4409);
    expect((second.join.others as Array<{ identity: string }>).map((o) => o.identity)).toEqual(['dave']);
    // Dave saw carol leave and come back, and nothing forged.
    await watcher.client.wait(
      ofType('participantJoined', (m) => (m.participant as { node: string }).node === cluster.nodes[1]!.id),
      20_000,
    );
    expect(watcher.client.received.filter((m) => m.type === 'data')).toEqual([]);
    // The nodes are still serving.
    expect(await second.client.request({ type: 'ping', timestamp: 3 })).toMatchObject({ type: 'pong' });
  });
});
