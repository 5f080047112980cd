import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { encodeKvKey, kvBucketName } from '../../src/ports/store/kv-names.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { nativeClusterEnv } from '../fixtures/native-cluster-env.js';
import type { NdcSubscriber } from '../fixtures/ndc-peer.js';
import { nodeMetric } from '../fixtures/node-metric.js';
import { RtcClient, videoOf } from '../fixtures/rtc-client.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';

// A subscriber on node 0 of a publisher on node 1, when node 0 asks before node 1 has said
// everything (the CI failure of sdk-room-resume-cluster: the first media never came):
// - the publisher's track record is written one track after the other, and the room hears
//   of each track before its write lands: a node that read the record in between made its
//   stand-in of the publisher without the video, for good. Here the record read in between
//   is made on purpose: the test writes the audio-only record node 1's first write would
//   be, the subscriber subscribes, then the full record comes back (node 1's second write);
// - the publisher's node busy (SIGSTOP) when node 0 sends its first `want`: an unanswered
//   request was taken for "not publishing", and the subscriber was told not_found.

const KEY = 'relay-late-record';
const SECRET = 'a-secret-for-the-relay-late-record-test-0123';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true };
const run = hasTool('nats-server', 'nats-server');

type Record = { node: string; instance: string; tracks: Array<{ relay: string; kind: string }> };

describe.runIf(run)('the SFU relay when the publisher is not all there yet', () => {
  let cluster: Cluster;
  let nc: NatsConnection;
  let tracks: KV;
  const clients: RtcClient[] = [];
  const url = (i: number): string => cluster.nodes[i]!.url;
  const relayedIn = (): Promise<number> => nodeMetric(url(0), 'chorus_sfu_relayed_publishers_in');

  async function join(i: number, room: string, identity: string): Promise<RtcClient> {
    const token = await createAccessToken(KEY, SECRET, { room, identity, grants: MEMBER, ttlSeconds: 600 });
    const { client } = await RtcClient.connect(url(i), token);
    clients.push(client);
    return client;
  }

  /** alice publishing on node 1 and bob on node 0 told of her video. */
  async function aliceOnNode1(room: string): Promise<RtcClient> {
    const alice = await join(1, room, 'alice');
    await alice.publish();
    const bob = await join(0, room, 'bob');
    if (!bob.received.some((m) => m.type === 'join' && JSON.stringify(m).includes('alice-video')))
      await bob.wait(videoOf('alice'), 30_000);
    return bob;
  }

  // The track directory's key of a room's publisher (track-directory.ts), as KV stores it.
  const recordKey = (room: string, user: string): string =>
    encodeKvKey(`${Buffer.from(room).toString('base64url')}.${Buffer.from(user).toString('base64url')}`);

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 2, env: nativeClusterEnv(KEY, SECRET) });
    nc = await natsConnect({ servers: cluster.nats.url });
    tracks = await new Kvm(nc).open(kvBucketName('sfu-tracks'));
  }, 120_000);
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await nc?.close();
    await cluster?.stop();
  });

  it("a stand-in made from a record without the publisher's video ends once the record has it, and the next subscription receives the video", async () => {
    const bob = await aliceOnNode1('late-record');
    const key = recordKey('late-record', 'alice');
    let full: Record | undefined;
    await eventually(
      async () => {
        full = (await tracks.get(key))?.json<Record>();
        return full?.tracks.length === 2;
      },
      30_000,
      "alice's record with both tracks",
    );
    // The record as node 0 could read it between node 1's two writes: her audio only.
    await tracks.put(
      key,
      JSON.stringify({ ...full!, tracks: full!.tracks.filter((t) => t.kind === 'audio') }),
    );
    const partial = await bob.subscribe('alice');
    await tracks.put(key, JSON.stringify(full));
    // Node 0 sees the record name a track its stand-in lacks: the stand-in ends, and with
    // it bob's leg without video (a client makes its leg again, as after any leg loss).
    await eventually(
      async () => (await relayedIn()) === 0,
      30_000,
      'node 0 ending its outdated stand-in of alice',
    );
    expect(partial.videoPackets.length).toBe(0);
    const again = await bob.subscribe('alice');
    await eventually(
      () => again.videoPackets.length > 20 && again.audioPackets.length > 20,
      30_000,
      () =>
        `alice's video and audio at bob (video ${again.videoPackets.length}, audio ${again.audioPackets.length})`,
    );
  }, 180_000);

  it("a subscription while the publisher's node does not answer (SIGSTOP) comes up and receives once the node answers", async () => {
    const bob = await aliceOnNode1('late-answer');
    const node1 = cluster.nodes[1]!.process.child.pid!;
    // Node 0's first `want` for alice's tracks goes unanswered (its bound is 2 s).
    process.kill(node1, 'SIGSTOP');
    let received: NdcSubscriber;
    try {
      received = await bob.subscribe('alice');
    } finally {
      process.kill(node1, 'SIGCONT');
    }
    await eventually(
      () => received.videoPackets.length > 20 && received.audioPackets.length > 20,
      30_000,
      () =>
        `alice's media at bob (video ${received.videoPackets.length}, audio ${received.audioPackets.length})`,
    );
  }, 180_000);
});
