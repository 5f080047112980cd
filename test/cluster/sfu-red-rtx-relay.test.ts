import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { NdcSubscriber } from '../fixtures/ndc-peer.js';
import { NdcRtxPublisher, expectRedDelivered, offerRed } from '../fixtures/ndc-rtx-publisher.js';
import { hasTool } from '../fixtures/system-tools.js';
import { SFU_ONLY_NODE_ENV, createBlueskyRoom } from '../fixtures/bluesky-room.js';
import { eventually } from '../fixtures/ws-client.js';
import { buildNack } from '../../src/media/webrtc/rtp.js';

// Issue 18 items 3 and 5 across two real Chorus processes over nats-server: a publisher
// on node 0 that sends Opus RED and loses video packets on its way in, subscribers on
// node 1. The relay carries RED as sent (its payload type in the track directory), so
// node 1 still strips it for a subscriber without RED; packets repaired by RTX on node 0
// reach node 1 as the originals; node 1 retransmits as RTX from its own history.

let cluster: Cluster;
const url = (i: number): string => cluster.nodes[i]!.url;
const peers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

const run = hasTool('nats-server', 'nats-server');
const LOST = [120, 121, 170];

describe.skipIf(!run)('RED and RTX across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({ nodes: 2, env: { ...SFU_ONLY_NODE_ENV } });
  }, 120_000);

  afterAll(async () => {
    for (const p of peers.splice(0)) p.close();
    await cluster?.stop();
  });

  it('a RED publisher on node 0 with loss on its way in: node 1 serves RED, the primary, the repairs, and RTX', async () => {
    const room = await createBlueskyRoom(url(0), 'host');
    const pub = new NdcRtxPublisher('red-rtx-pub', { red: true, lose: (seq) => LOST.includes(seq) });
    peers.push(pub);
    expect((await pub.publish(url(0), room, 'ada')).status).toBe(200);
    const plain = new NdcSubscriber();
    const red = new NdcSubscriber(100, 109, true, true); // RED and RTX offered
    peers.push(plain, red);
    expect((await plain.subscribe(url(1), room, 'plain', 'ada')).status).toBe(200);
    const s = await red.subscribe(url(1), room, 'red', 'ada', (sdp) => sdp, offerRed);
    expect(s.status, s.error).toBe(200);
    expect(s.answer).toMatch(/a=fmtp:62 109\/109/);
    const fid = /a=ssrc-group:FID (\d+) (\d+)/.exec(s.answer!)!;
    pub.start();

    // The packets lost on the way into node 0 reach node 1's subscribers, repaired.
    await eventually(
      () =>
        LOST.every((seq) =>
          plain.videoPackets.some((p) => p.readUInt16BE(2) === seq && NdcRtxPublisher.payloadOf(p) === seq),
        ) && red.audioPackets.length >= 20,
      20_000,
      'repaired packets and audio on node 1',
    );
    expectRedDelivered(plain, red);

    // Node 1 answers its own subscriber's NACK from its history of the relayed track, as RTX.
    const got = red.videoPackets.slice(-5).map((p) => p.readUInt16BE(2));
    red.video.sendMessageBinary(buildNack(0x4321, Number(fid[1]), got[0]!));
    await eventually(
      () =>
        red.videoPackets.some((p) => p.readUInt32BE(8) === Number(fid[2]) && p.readUInt16BE(12) === got[0]),
      10_000,
      'an RTX retransmission from node 1',
    );
  }, 90_000);
});
