import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlMessage, serializeControl } from '../../src/api/stream/control-message.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { ClusterSockets } from '../fixtures/cluster-sockets.js';
import { FakeCoordinator } from '../fixtures/fake-coordinator.js';
import { hasTool } from '../fixtures/system-tools.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

/*
 * Stream on three nodes, each linked to one coordinator as several original servers
 * were: one publisher per channel cluster-wide (with its key checked for receivers on
 * every node), the stats route summing every node, a gone node's channels freed.
 */
const SECRET = 'coordinator-shared-secret';
const PORT_BASE = 9100;
const coord = new FakeCoordinator(SECRET);
let cluster: Cluster;
let nats: NatsConnection;

const sockets = new ClusterSockets(() => cluster);
const ws = (i: number) => sockets.wsUrl(i);
const open = (i: number, path: string) => sockets.open(i, path);
const stats = async (i: number, channel: string): Promise<Record<string, unknown>> =>
  (await (await fetch(`${cluster.nodes[i]!.url}/stream-stats/${channel}`)).json()) as Record<string, unknown>;
/** The coordinator link of node `i` (told apart by the external port each node announces). */
const linkOf = (i: number) => {
  const links = coord.connections.filter((c) => c.headers['x-custom-port'] === String(PORT_BASE + i));
  return links[links.length - 1]!;
};
const requestsFrom = (i: number, channel: string) =>
  coord.receivedOn.filter(
    (r) =>
      r.socket === linkOf(i).socket &&
      r.message.method === 'PUBLISH-REQUEST' &&
      r.message.params.get('stream-channel') === channel,
  ).length;

const enabled = hasTool('nats-server', 'nats-server');

describe.runIf(enabled)('Stream across nodes', () => {
  beforeAll(async () => {
    await coord.start();
    cluster = await startCluster({
      env: {
        CONTROL_BASE_URL: coord.url,
        CONTROL_SECRET: SECRET,
        EXTERNAL_IP: '127.0.0.1',
        MAX_IP_CONCURRENT_CONNECTIONS: '50',
      },
      nodeEnv: (i) => ({ EXTERNAL_PORT: String(PORT_BASE + i) }),
    });
    nats = await connect({ servers: cluster.nats.url, maxReconnectAttempts: -1 });
    await eventually(() => coord.connections.length >= 3, 20_000, 'every node linked to the coordinator');
  }, 60_000);
  afterAll(async () => {
    sockets.terminateAll();
    await nats?.close();
    await cluster?.stop();
    await coord.stop();
  });

  it('each node links to the coordinator itself, announcing its own address', () => {
    const ports = coord.connections.map((c) => c.headers['x-custom-port']).sort();
    expect(ports).toEqual(['9100', '9101', '9102']);
    expect(coord.connections.every((c) => c.headers['x-external-ip'] === '127.0.0.1')).toBe(true);
  });

  it('one publisher per channel cluster-wide; receivers on any node must present its key', async () => {
    const pub = await open(0, '/live/k1/publish');
    expect(requestsFrom(0, 'live')).toBe(1);
    // Another node refuses a second publisher before asking the coordinator.
    expect(await TestSocket.refusal(`${ws(1)}/live/k2/publish`)).toEqual({
      status: 403,
      body: 'Already publishing.',
    });
    expect(await TestSocket.refusal(`${ws(2)}/live/k1/publish`)).toEqual({
      status: 403,
      body: 'Already publishing.',
    });
    expect(requestsFrom(1, 'live') + requestsFrom(2, 'live')).toBe(0);
    // A receiver on another node with the wrong key is told so, as on one node.
    const wrong = await open(1, '/live/nope/receive');
    expect(await wrong.closed).toEqual({ code: 1008, reason: 'Invalid streaming key' });
    expect(wrong.messages).toContain('ERROR: Invalid streaming key');
    // With the right key it is admitted (it waits: the media itself crosses nodes in part 2).
    const remote = await open(1, '/live/k1/receive');
    const local = await open(0, '/live/k1/receive');
    for (let i = 0; i < 5; i++) pub.ws.send(Buffer.alloc(1000, i));
    await local.binaryCount(5);
    // The stats are the cluster's, whichever node is asked.
    for (const i of [0, 1, 2]) {
      await eventually(async () => (await stats(i, 'live')).receivers === 2, 5000, `stats on node ${i}`);
      expect(await stats(i, 'live')).toMatchObject({
        channel: 'live',
        publishing: true,
        receivers: 2,
        chunksIn: 5,
        bytesIn: 5000,
        nodes: 3,
        missingNodes: 0,
      });
    }
    remote.close();
    pub.close();
    expect(await local.closed).toEqual({ code: 1000, reason: 'stream ended' });
    // Once it has gone, any node may publish the channel, with a new key.
    const again = await sockets.openOnceAccepted(2, '/live/k3/publish', 10_000, 'the channel free on node 2');
    expect(requestsFrom(2, 'live')).toBe(1);
    again.close();
    await again.closed;
  }, 60_000);

  it("the coordinator's STREAM-KILL on a node's link ends its publisher and frees the channel cluster-wide", async () => {
    const pub = await open(1, '/killme/k/publish');
    const accepted = coord.receivedOn.filter(
      (r) => r.socket === linkOf(1).socket && r.message.method === 'PUBLISH-REQUEST',
    );
    expect(accepted.length).toBeGreaterThan(0);
    expect(await TestSocket.refusal(`${ws(0)}/killme/k/publish`)).toEqual({
      status: 403,
      body: 'Already publishing.',
    });
    linkOf(1).socket.send(
      serializeControl(controlMessage('STREAM-KILL', { 'Stream-Channel': 'killme', 'Stream-ID': '*' })),
    );
    expect(await pub.closed).toEqual({ code: 1000, reason: 'stream killed' });
    await eventually(async () => (await stats(2, 'killme')).publishing === false, 5000, 'not publishing');
    const next = await sockets.openOnceAccepted(0, '/killme/k/publish', 10_000, 'the channel free on node 0');
    next.close();
    await next.closed;
  }, 30_000);

  it('two publishers racing on two nodes for one channel: exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const tries = await Promise.allSettled([
        open(0, `/race${round}/a/publish`),
        open(1, `/race${round}/b/publish`),
      ]);
      const won = tries.filter((t) => t.status === 'fulfilled');
      expect(won).toHaveLength(1);
      const lost = tries.find((t) => t.status === 'rejected') as PromiseRejectedResult;
      expect(String(lost.reason)).toMatch(/unexpected response 403/);
      (won[0] as PromiseFulfilledResult<TestSocket>).value.close();
    }
  }, 30_000);

  it('malformed stats questions on the bus are logged and dropped; the route still answers', async () => {
    const subject = 'chorus.node.node-0.stream.stats';
    nats.publish(subject, '{{{');
    await expect(nats.request(subject, JSON.stringify({ channel: 42 }), { timeout: 500 })).rejects.toThrow();
    await eventually(
      () =>
        /stream: bus message is not JSON, dropped/.test(cluster.nodes[0]!.process.output()) &&
        /stream: bus message of the wrong shape, dropped/.test(cluster.nodes[0]!.process.output()),
      10_000,
      'the drop lines',
    );
    expect(await stats(1, 'quiet')).toMatchObject({ publishing: false, receivers: 0, nodes: 3 });
  }, 30_000);

  it('a node that dies while publishing: its channel is freed for the others, and the stats leave it out', async () => {
    await open(2, '/orphan/k/publish');
    expect(await TestSocket.refusal(`${ws(0)}/orphan/k/publish`)).toEqual({
      status: 403,
      body: 'Already publishing.',
    });
    cluster.nodes[2]!.process.kill('SIGKILL');
    await cluster.nodes[2]!.process.exited;
    await sockets.openOnceAccepted(0, '/orphan/k/publish', 30_000, 'the channel free once node 2 is gone');
    await eventually(async () => (await stats(1, 'orphan')).nodes === 2, 10_000, 'two nodes in the stats');
    expect(await stats(1, 'orphan')).toMatchObject({ publishing: true, nodes: 2 });
  }, 60_000);

  it('while NATS is out of reach a publish answers 503 with a clear body, and works again once it is back', async () => {
    // A publisher that leaves while NATS is away: its claim is given back once NATS returns.
    const leaving = await open(1, '/survivor/k/publish');
    await cluster.nats.stop();
    try {
      leaving.close();
      await leaving.closed;
      expect(await TestSocket.refusal(`${ws(0)}/offline/k/publish`)).toEqual({
        status: 503,
        body: 'Service unavailable: the cluster store is out of reach.',
      });
      expect((await fetch(`${cluster.nodes[1]!.url}/stream-stats/offline`)).status).toBe(503);
    } finally {
      await cluster.nats.start();
    }
    const back = await sockets.openOnceAccepted(0, '/offline/k/publish', 30_000, 'publishing again');
    back.close();
    const survivor = await sockets.openOnceAccepted(
      0,
      '/survivor/k2/publish',
      30_000,
      'the claim of the publisher that left while NATS was away released',
    );
    survivor.close();
  }, 90_000);
});
