import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import type { NdcClient } from '../fixtures/ndc-peer.js';
import { MarkedPublisher, publishOn, subscribeOn, TwoVideoSubscriber } from '../fixtures/ndc-screen.js';
import { ofType, RtcClient } from '../fixtures/rtc-client.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';
import { nativeClusterEnv } from '../fixtures/native-cluster-env.js';

// Camera and screen at once across nodes (#19): alice publishes both on node 0 (two
// publisher peer connections), bob on node 1 receives both through the SFU relay, each on
// the section he names; the screen's end leaves the camera flowing.

const KEY = 'rtc-screen-cluster';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true };
const CAMERA_MARK = 0xca;
const SCREEN_MARK = 0x5c;

let cluster: Cluster;
const clients: RtcClient[] = [];
const legs: NdcClient[] = [];
afterEach(() => {
  for (const l of legs.splice(0)) l.close();
  for (const c of clients.splice(0)) c.close();
});

async function join(i: number, room: string, identity: string): Promise<RtcClient> {
  const token = await createAccessToken(KEY, SECRET, { room, identity, grants: MEMBER, ttlSeconds: 600 });
  const { client } = await RtcClient.connect(cluster.nodes[i]!.url, token);
  clients.push(client);
  return client;
}

describe.skipIf(!hasTool('nats-server', 'nats-server'))('camera and screen at once across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 2,
      env: nativeClusterEnv(KEY, SECRET),
    });
  }, 90_000);
  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await cluster?.stop();
  });

  it("a subscriber on another node receives a participant's camera and screen, each on the section it names", async () => {
    const alice = await join(0, 'xs1', 'alice');
    const bob = await join(1, 'xs1', 'bob');
    const camera = new MarkedPublisher(CAMERA_MARK, 1000, true);
    const screen = new MarkedPublisher(SCREEN_MARK, 2000, false);
    legs.push(camera, screen);
    await publishOn(alice, camera, {});
    expect(await publishOn(alice, screen, { pc: 'screen', sources: { video: 'screen' } })).toMatchObject({
      trackIds: { video: 'alice-screen' },
    });
    await bob.wait(
      ofType('trackPublished', (m) => (m.track as { id: string }).id === 'alice-screen'),
      30_000,
    );
    await bob.wait(
      ofType('trackPublished', (m) => (m.track as { id: string }).id === 'alice-video'),
      30_000,
    );

    const sub = new TwoVideoSubscriber();
    legs.push(sub);
    await subscribeOn(bob, sub, 'alice', ['alice-screen', 'alice-video', 'alice-audio']);
    await eventually(
      () => sub.count(0, SCREEN_MARK) > 50 && sub.count(1, CAMERA_MARK) > 50,
      45_000,
      'both videos at bob',
    );
    expect(sub.count(0, CAMERA_MARK)).toBe(0);
    expect(sub.count(1, SCREEN_MARK)).toBe(0);

    // The share ends: its track goes, the camera keeps coming across the relay.
    expect(await alice.request({ type: 'unpublish', pc: 'screen' })).toMatchObject({ type: 'ok' });
    await bob.wait(
      ofType('trackUnpublished', (m) => m.trackId === 'alice-screen'),
      30_000,
    );
    const before = sub.count(1, CAMERA_MARK);
    await eventually(() => sub.count(1, CAMERA_MARK) > before + 50, 45_000, 'the camera still at bob');
  }, 180_000);
});
