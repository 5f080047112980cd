import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { WhepViewer, WhipPublisher } from '../../src/api/chorus/whip-client.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { hasTool } from '../fixtures/system-tools.js';
import { untilStill } from '../fixtures/until-still.js';
import { eventually } from '../fixtures/ws-client.js';
import { nativeClusterEnv } from '../fixtures/native-cluster-env.js';
import { whipTrickle } from '../fixtures/whip-trickle.js';

// WHIP and WHEP across two real Chorus processes sharing one nats-server: a WHEP viewer on
// node 1 of a WHIP publisher on node 0 (the SFU relay carries the media), and session
// DELETEs that land on the node not holding the session.

const KEY = 'whip-cluster-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';

let cluster: Cluster;
let admin: string;
const url = (i: number): string => cluster.nodes[i]!.url;
const clients: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

const token = (grants: Grants, room: string, identity: string): Promise<string> =>
  createAccessToken(KEY, SECRET, { grants, room, identity, ttlSeconds: 600 });

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('WHIP and WHEP across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 2,
      env: nativeClusterEnv(KEY, SECRET),
    });
    admin = await createAccessToken(KEY, SECRET, {
      grants: { roomCreate: true, roomList: true, roomAdmin: true },
      ttlSeconds: 600,
    });
  }, 90_000);

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await cluster?.stop();
  });

  it('a WHEP viewer on node 1 receives a WHIP publisher of node 0; DELETEs through the other node end both', async () => {
    const created = await fetch(`${url(0)}/chorus/v1/rooms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'relayed' }),
    });
    expect(created.status).toBe(201);

    const pubToken = await token({ roomJoin: true, canPublish: true }, 'relayed', 'cam');
    const pub = new WhipPublisher('cam');
    clients.push(pub);
    await pub.publish(`${url(0)}/chorus/v1/whip/relayed`, pubToken);
    pub.start(400);
    expect(pub.location.startsWith(`${url(0)}/`)).toBe(true);

    const viewToken = await token({ roomJoin: true, canSubscribe: true }, 'relayed', 'far');
    const viewer = new WhepViewer('far');
    clients.push(viewer);
    await viewer.view(`${url(1)}/chorus/v1/whep/relayed/cam`, viewToken);
    await eventually(
      () => viewer.video.packets > 100 && viewer.audio.packets > 30,
      30_000,
      'relayed packets at the viewer on node 1',
    );

    // The room service lists both, each on its own node.
    const res = await fetch(`${url(1)}/chorus/v1/rooms/relayed/participants`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    const { participants } = (await res.json()) as {
      participants: Array<{ identity: string; node: string }>;
    };
    expect(participants.map((p) => [p.identity, p.node])).toEqual([
      ['cam', 'node-0'],
      ['far', 'node-1'],
    ]);

    // The viewer's session is on node 1; its DELETE lands on node 0 and still ends it.
    const viewerPath = new URL(viewer.location).pathname;
    const endView = await fetch(`${url(0)}${viewerPath}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${viewToken}` },
    });
    expect(endView.status).toBe(200);
    await untilStill(() => viewer.packets, 'media to stop at the viewer');

    // A second viewer on node 1, then the publish DELETEd through node 1: its media stops.
    const viewer2 = new WhepViewer('far2');
    clients.push(viewer2);
    await viewer2.view(
      `${url(1)}/chorus/v1/whep/relayed/cam`,
      await token({ roomJoin: true, canSubscribe: true }, 'relayed', 'far2'),
    );
    await eventually(() => viewer2.video.packets > 50, 30_000, 'packets at the second viewer');
    const endPublish = await fetch(`${url(1)}${new URL(pub.location).pathname}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${pubToken}` },
    });
    expect(endPublish.status).toBe(200);
    await untilStill(() => viewer2.packets, 'media to stop at the second viewer');
    // Ended: neither node holds it any more.
    const again = await fetch(`${url(1)}${new URL(pub.location).pathname}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${pubToken}` },
    });
    expect(again.status).toBe(404);
  }, 180_000);

  it("a trickling WHIP publisher's PATCHes land on the node not holding its session and still reach its leg", async () => {
    const created = await fetch(`${url(0)}/chorus/v1/rooms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'trickled' }),
    });
    expect(created.status).toBe(201);
    const pubToken = await token({ roomJoin: true, canPublish: true }, 'trickled', 'cam');
    const pub = new WhipPublisher('cam');
    clients.push(pub);
    // The session is on node 0; every PATCH goes to node 1; the publisher drops the
    // server's candidates from the answer, so only the PATCHed ones can connect it.
    const patches = await whipTrickle(pub, `${url(0)}/chorus/v1/whip/trickled`, pubToken, {
      answerCandidates: false,
      patchTo: (location) => `${url(1)}${new URL(location).pathname}`,
    });
    expect(patches.map((p) => p.status)).toEqual(patches.map(() => 204));
    expect(pub.location.startsWith(`${url(0)}/`)).toBe(true);
    pub.start(400);
    const viewer = new WhepViewer('far');
    clients.push(viewer);
    await viewer.view(
      `${url(1)}/chorus/v1/whep/trickled/cam`,
      await token({ roomJoin: true, canSubscribe: true }, 'trickled', 'far'),
    );
    await eventually(() => viewer.video.packets > 50, 30_000, 'packets of the trickled publisher on node 1');
    // Refusals made by the holding node travel back: an ICE restart is 422 through node 1.
    const id = pub.location.split('/').pop()!;
    const restart = await fetch(`${url(1)}${new URL(pub.location).pathname}`, {
      method: 'PATCH',
      headers: {
        authorization: `Bearer ${pubToken}`,
        'content-type': 'application/trickle-ice-sdpfrag',
        'if-match': `"${id}"`,
      },
      body: 'a=ice-ufrag:other\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n',
    });
    expect(restart.status).toBe(422);
  }, 180_000);
});
