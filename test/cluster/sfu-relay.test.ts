import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killNode, startCluster, type Cluster } from '../fixtures/cluster.js';
import { NdcPublisher, NdcSubscriber } from '../fixtures/ndc-peer.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { LossyUdpRelay, answerThroughRelay, offerWithoutCandidates } from '../fixtures/lossy-udp-relay.js';
import { buildNack, buildPli } from '../../src/media/webrtc/rtp.js';
import { encodeRelayBatch } from '../../src/media/relay/relay-batch.js';
import { readJson } from '../fixtures/cluster-read.js';

// Blue Sky rooms spanning three real Chorus processes over one nats-server: a publisher
// on one node, subscribers on the others (several on one node), real node-datachannel
// peers. The relay carries each track once per node; keyframe requests go back to the
// publisher's node, NACKs are answered where the subscriber is; a killed node's
// publisher ends its subscribers elsewhere and publishes again through another node.

let cluster: Cluster;
let nc: NatsConnection;
/** Node 1's WebRTC port, chosen here so a lossy relay can stand in front of it. */
let udpPort1: number;
const url = (i: number): string => cluster.nodes[i]!.url;
const peers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

interface TrackStat {
  kind: 'audio' | 'video';
  packetsIn: number;
  packetsOut: number;
  keyframeRequests: number;
  retransmissions: number;
  subscribers: unknown[];
  relay?: { packets: number; nodes?: number; from?: string };
}
interface RoomStats {
  publishers: Array<{ user: string; node?: string; tracks: TrackStat[] }>;
}

async function createRoom(admin: string): Promise<string> {
  const res = await fetch(`${url(0)}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: admin }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function roomStats(i: number, room: string): Promise<RoomStats> {
  const res = await fetch(`${url(i)}/webrtc/room/${room}/stats`);
  expect(res.status).toBe(200);
  return (await res.json()) as RoomStats;
}

/** The video track of `user` as node `i` sees it (its own or relayed), if any. */
async function videoOf(i: number, room: string, user: string): Promise<TrackStat | undefined> {
  const p = (await roomStats(i, room)).publishers.filter((x) => x.user === user);
  expect(p.length).toBeLessThanOrEqual(1);
  return p[0]?.tracks.find((t) => t.kind === 'video');
}

async function metric(i: number, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url(i)}/metrics`)).text();
  const line = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)`, 'm').exec(text);
  return Number(line?.[1] ?? NaN);
}
const subscriberLegs = (i: number) => metric(i, 'chorus_sfu_peers', '{role="subscriber"}');

async function publisher(i: number, room: string, user: string): Promise<NdcPublisher> {
  const pub = new NdcPublisher();
  peers.push(pub);
  const r = await pub.publish(url(i), room, user);
  expect(r.status).toBe(200);
  pub.start();
  return pub;
}

async function subscriber(i: number, room: string, user: string, peer: string): Promise<NdcSubscriber> {
  const sub = new NdcSubscriber(100 + (peers.length % 3) * 2, 109);
  peers.push(sub);
  const r = await sub.subscribe(url(i), room, user, peer);
  expect(r.status, r.error).toBe(200);
  return sub;
}

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('SFU rooms across nodes', () => {
  beforeAll(async () => {
    udpPort1 = await freeUdpPort();
    cluster = await startCluster({
      nodeEnv: (i): Record<string, string> => (i === 1 ? { WEBRTC_UDP_PORT: String(udpPort1) } : {}),
      env: {
        WEBRTC_BIND_ADDRESS: '127.0.0.1',
        SIGNAL_ENABLED: 'no',
        VOIP_ENABLED: 'no',
        BEEP_ENABLED: 'no',
        STREAM_ENABLED: 'no',
      },
    });
    nc = await natsConnect({ servers: cluster.nats.url });
  }, 120_000);

  afterAll(async () => {
    for (const p of peers.splice(0)) p.close();
    await nc?.close();
    await cluster?.stop();
  });

  it('a publisher on node 0 reaches subscribers on nodes 0, 1 and 2; each remote node receives each track once', async () => {
    const room = await createRoom('host');
    const pub = await publisher(0, room, 'alice');
    // Listed on every node, so a page on any node knows whom to subscribe to.
    for (const i of [1, 2]) {
      const read = await readJson<{ publishers: string[] }>(`${url(i)}/webrtc/room/${room}`);
      expect(read.publishers).toEqual(['alice']);
    }
    const local = await subscriber(0, room, 'bob', 'alice');
    const onOne = [
      await subscriber(1, room, 'carol', 'alice'),
      await subscriber(1, room, 'dave', 'alice'),
      await subscriber(1, room, 'erin', 'alice'),
    ];
    const onTwo = await subscriber(2, room, 'frank', 'alice');
    const all = [local, ...onOne, onTwo];
    await eventually(
      () => all.every((s) => s.videoPackets.length > 30 && s.audioPackets.length > 30),
      20_000,
      'media on every subscriber',
    );
    // Each leg with its own payload type and the SFU's SSRC; sequence numbers pass through.
    for (const s of all) {
      expect(s.videoPackets.every((p) => (p[1]! & 0x7f) === s.videoPt)).toBe(true);
      expect(s.videoPackets.at(-1)!.readUInt32BE(12)).toBe(s.videoPackets.at(-1)!.readUInt16BE(2));
    }

    // Counted on the wire: the relay subjects carry each packet once, though two nodes
    // and four legs receive it.
    const counts = new Map<string, number>();
    const tap = nc.subscribe('chorus.sfu.rtp.>', {
      callback: (_e, m) => {
        counts.set(m.subject, (counts.get(m.subject) ?? 0) + 1);
      },
    });
    await nc.flush();
    const from = pub.videoSeq;
    await eventually(() => pub.videoSeq - from >= 200, 20_000, '200 more video packets sent');
    const sent = pub.videoSeq - from;
    tap.unsubscribe();
    expect(counts.size).toBe(2); // one subject per track: video and audio
    const videoOnWire = Math.max(...counts.values());
    expect(videoOnWire).toBeGreaterThan(sent * 0.5);
    expect(videoOnWire).toBeLessThanOrEqual(sent + 5);

    // Each node counts what it got: one relayed copy of alice's video on node 1 (three legs),
    // no more packets than the publisher's node received.
    await eventually(
      async () => ((await videoOf(1, room, 'alice'))?.packetsOut ?? 0) > 3 * 100,
      10_000,
      'node 1 forwarding to its three legs',
    );
    const origin = (await videoOf(0, room, 'alice'))!;
    const relayed1 = (await videoOf(1, room, 'alice'))!;
    const relayed2 = (await videoOf(2, room, 'alice'))!;
    expect(relayed1.relay?.from).toBe('node-0');
    expect(relayed1.subscribers).toHaveLength(3);
    expect(relayed2.subscribers).toHaveLength(1);
    expect(origin.relay?.nodes).toBe(2);
    for (const r of [relayed1, relayed2]) {
      expect(r.relay!.packets).toBeGreaterThan(100);
      expect(r.relay!.packets).toBeLessThanOrEqual(origin.packetsIn);
    }
    // Node 1 forwards each relayed packet to its three legs: about three out per one in.
    expect(relayed1.packetsOut).toBeGreaterThan(1.5 * relayed1.packetsIn);
    expect(await metric(1, 'chorus_sfu_relayed_publishers_in')).toBe(1);
    expect(await metric(0, 'chorus_sfu_relayed_tracks_out')).toBe(2);

    // The publisher leaves: the legs on every node end, and the relay stops.
    pub.close();
    await eventually(
      async () =>
        (await subscriberLegs(1)) === 0 && (await subscriberLegs(2)) === 0 && (await subscriberLegs(0)) === 0,
      20_000,
      'every subscriber leg ended',
    );
    await eventually(
      async () => (await metric(1, 'chorus_sfu_relayed_publishers_in')) === 0,
      10_000,
      'node 1 no longer receiving',
    );
    await eventually(
      async () => {
        for (const i of [0, 1, 2]) {
          const read = await readJson<{ publishers: string[] }>(`${url(i)}/webrtc/room/${room}`);
          if (read.publishers.length > 0) return false;
        }
        return true;
      },
      10_000,
      'alice unlisted on every node',
    );
  }, 90_000);

  it('keyframe requests from node 1 reach the publisher on node 0; NACKs are answered on node 1', async () => {
    const room = await createRoom('host');
    const pub = await publisher(0, room, 'kf-pub');
    const sub = await subscriber(1, room, 'kf-sub', 'kf-pub');
    await eventually(() => sub.videoPackets.length > 20, 20_000, 'media on node 1');
    // The new subscriber's own request (forced, as on one node) reached the publisher.
    await eventually(() => pub.plis() >= 1, 10_000, 'the subscribe-time PLI at the publisher');
    const ssrc = sub.videoPackets[0]!.readUInt32BE(8);
    const before = pub.plis();
    // After the throttle interval (1 s by default) one more request passes.
    await eventually(
      () => {
        sub.video.sendMessageBinary(buildPli(0x1234, ssrc));
        return pub.plis() > before;
      },
      15_000,
      'a PLI from the subscriber on node 1 at the publisher on node 0',
    );
    expect((await videoOf(0, room, 'kf-pub'))!.keyframeRequests).toBeGreaterThanOrEqual(2);

    // A subscriber on node 1 behind a relay that loses three video packets: its NACK is
    // answered from node 1's own history (SRTP would drop a copy of a packet it has).
    let videoSeen = 0;
    const lossy = new LossyUdpRelay(udpPort1, (_i, size) => size > 150 && [40, 41, 42].includes(videoSeen++));
    const lossyPort = await lossy.start();
    peers.push(lossy);
    const lossySub = new NdcSubscriber();
    peers.push(lossySub);
    expect(
      (
        await lossySub.subscribe(
          url(1),
          room,
          'nack-sub',
          'kf-pub',
          answerThroughRelay(lossyPort),
          offerWithoutCandidates,
        )
      ).status,
    ).toBe(200);
    await eventually(
      () => lossy.dropped === 3 && lossySub.videoPackets.length > 60,
      20_000,
      'media with losses',
    );
    const seqs = new Set(lossySub.videoPackets.map((p) => p.readUInt16BE(2)));
    const sorted = [...seqs].sort((x, y) => x - y);
    const missing: number[] = [];
    for (let q = sorted[0]!; q < sorted.at(-1)!; q++) if (!seqs.has(q)) missing.push(q);
    expect(missing).toHaveLength(3);
    const lossySsrc = lossySub.videoPackets[0]!.readUInt32BE(8);
    lossySub.video.sendMessageBinary(buildNack(0x4321, lossySsrc, missing[0]!, 0b11));
    await eventually(
      () => missing.every((m) => lossySub.videoPackets.some((p) => p.readUInt16BE(2) === m)),
      10_000,
      'the retransmissions from node 1',
    );
    for (const m of missing) {
      const resent = lossySub.videoPackets.find((p) => p.readUInt16BE(2) === m)!;
      expect(resent.readUInt32BE(8)).toBe(lossySsrc);
      expect(resent[1]! & 0x7f).toBe(lossySub.videoPt);
    }
    await eventually(
      async () => (await videoOf(1, room, 'kf-pub'))!.retransmissions === 3,
      5000,
      'counted on node 1',
    );
    expect((await videoOf(0, room, 'kf-pub'))!.retransmissions).toBe(0);
  }, 60_000);

  it('drops malformed relay packets and control messages; media keeps flowing; unknown publishers are 404 on every node', async () => {
    const room = await createRoom('host');
    const pub = await publisher(0, room, 'm-pub');
    const sub = await subscriber(2, room, 'm-sub', 'm-pub');
    await eventually(() => sub.videoPackets.length > 20, 20_000, 'media on node 2');
    const subjects = new Set<string>();
    const tap = nc.subscribe('chorus.sfu.rtp.>', {
      callback: (_e, m) => {
        subjects.add(m.subject);
      },
    });
    await eventually(() => subjects.size === 2, 10_000, 'the relay subjects');
    tap.unsubscribe();
    const droppedBefore = await metric(2, 'chorus_sfu_relay_dropped_total');
    for (const s of subjects) {
      nc.publish(s, new Uint8Array(0));
      nc.publish(s, new Uint8Array([1, 2, 3]));
      nc.publish(s, Buffer.alloc(40, 0xff)); // version 3
      nc.publish(s, Buffer.from([0x80, 200, 0, 6, ...Buffer.alloc(24)])); // RTCP, not RTP
      // Batches: one whose length runs past its end, and a well-framed one carrying RTCP.
      nc.publish(s, Buffer.from([0, 40, 0x80, 96, ...Buffer.alloc(20)]));
      nc.publish(s, encodeRelayBatch([Buffer.from([0x80, 200, 0, 6, ...Buffer.alloc(24)])]));
    }
    const ctrl = 'chorus.node.node-0.sfu';
    nc.publish(ctrl, 'not json');
    nc.publish(ctrl, JSON.stringify({ op: 'pli', relay: '../../etc' }));
    nc.publish(ctrl, JSON.stringify({ op: 'want', relay: 'abcdefgh12345678', node: 'x' }));
    const answer = await nc.request(ctrl, JSON.stringify({ op: 'want', relay: 'nope', node: 'x' }));
    expect(answer.json()).toEqual({ ok: false });
    nc.publish('chorus.sfu.end.nonexistent0000', 'x');
    await eventually(
      async () => (await metric(2, 'chorus_sfu_relay_dropped_total')) >= droppedBefore + 12,
      10_000,
      'the bad packets counted on node 2',
    );
    const n = sub.videoPackets.length;
    await eventually(() => sub.videoPackets.length > n + 50, 10_000, 'media after the garbage');
    expect(pub.plis()).toBeGreaterThanOrEqual(1);

    for (const i of [0, 1, 2]) {
      const ghost = new NdcSubscriber();
      peers.push(ghost);
      const r = await ghost.subscribe(url(i), room, `ghost-${i}`, 'nobody');
      expect(r.status).toBe(404);
    }
  }, 60_000);

  it('a node holding only subscribers is killed: they come back through another node, nobody else notices', async () => {
    const room = await createRoom('host');
    const pub = await publisher(0, room, 'k-pub');
    const stays = await subscriber(1, room, 'k-stays', 'k-pub');
    await subscriber(2, room, 'k-moves', 'k-pub');
    await eventually(() => stays.videoPackets.length > 20, 20_000, 'media on node 1');
    await killNode(cluster.nodes[2]!.process);
    // The subscriber reconnects through node 1 at once.
    const moved = await subscriber(1, room, 'k-moves', 'k-pub');
    await eventually(() => moved.videoPackets.length > 20, 20_000, 'media for the moved subscriber');
    // Node 0 keeps relaying to node 1 only once node 2's interest lapses; nobody else noticed.
    await eventually(
      async () => (await videoOf(0, room, 'k-pub'))?.relay?.nodes === 1,
      20_000,
      "node 2's interest lapsed",
    );
    const n = stays.videoPackets.length;
    await eventually(() => stays.videoPackets.length > n + 100, 10_000, 'media on node 1 goes on');
    expect(pub.video.isOpen()).toBe(true);
    await cluster.restart(2);
  }, 90_000);

  it("the publisher's node is killed: subscribers elsewhere end promptly; it publishes again through another node and media flows again", async () => {
    const room = await createRoom('host');
    await publisher(0, room, 'p-pub');
    const subs = [await subscriber(1, room, 'p-one', 'p-pub'), await subscriber(2, room, 'p-two', 'p-pub')];
    await eventually(() => subs.every((s) => s.videoPackets.length > 20), 20_000, 'media on nodes 1 and 2');
    const killedAt = Date.now();
    await killNode(cluster.nodes[0]!.process);
    await eventually(
      async () => (await subscriberLegs(1)) === 0 && (await subscriberLegs(2)) === 0,
      15_000,
      'the subscriber legs on nodes 1 and 2 ended',
    );
    // Well before membership's own bound: the relay's refresh finds nobody answering.
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // The room (created on node 0) is untouched.
    expect((await fetch(`${url(1)}/webrtc/room/${room}`)).status).toBe(200);

    // The publisher comes back through node 1, the subscribers subscribe again.
    const back = Date.now();
    await publisher(1, room, 'p-pub');
    const again = [await subscriber(1, room, 'p-one', 'p-pub'), await subscriber(2, room, 'p-two', 'p-pub')];
    await eventually(() => again.every((s) => s.videoPackets.length > 5), 20_000, 'media flows again');
    // eslint-disable-next-line no-console
    console.log(`media again ${Date.now() - back} ms after the publisher came back`);
    await cluster.restart(0);
  }, 120_000);
});
