import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvBucketName } from '../../src/ports/store/kv-names.js';
import { BeepVoiceClient } from '../fixtures/beep-client.js';
import { beepClaim, startBeepCluster } from '../fixtures/beep-cluster.js';
import type { Cluster } from '../fixtures/cluster.js';
import { FakePermissions } from '../fixtures/fake-permissions.js';
import { nodeMetric } from '../fixtures/node-metric.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';

/*
 * Beep on three nodes: a `/join` made on any node reaches the client's connection on
 * another (the node holding it moves it), a user is in one conversation cluster-wide,
 * and what a node held goes with its last connection or with the node itself.
 */
const perms = new FakePermissions();
let cluster: Cluster;
let nats: NatsConnection;
const clients: BeepVoiceClient[] = [];

const claim = beepClaim;
const node = (i: number) => cluster.nodes[i]!.url;
const join = async (i: number, conversation: string, userid: string) => {
  const r = await fetch(`${node(i)}/join/${conversation}`, { method: 'POST', headers: claim(userid) });
  return { status: r.status, text: await r.text() };
};
const members = async (i: number, conversation: string): Promise<number> => {
  const r = await fetch(`${node(i)}/conversation/${conversation}`, { headers: claim('observer') });
  return ((await r.json()) as { members: number }).members;
};
const gauge = (i: number, name: string) => nodeMetric(node(i), name);
/** A voice client connected to node `i`: its signalling socket closes once the peer is up. */
const connectTo = async (i: number, userid: string, clientid = 'web'): Promise<BeepVoiceClient> => {
  const c = new BeepVoiceClient(440);
  clients.push(c);
  await c.connect(`${node(i).replace('http', 'ws')}/connect`, 'bare', claim(userid, clientid));
  return c;
};
/** The user's record in the cluster's store, read straight from JetStream KV. */
const userRecord = async (userid: string): Promise<unknown> => {
  const kv = await new Kvm(nats).open(kvBucketName('beep-users'));
  const e = await kv.get(`u=3D${Buffer.from(userid).toString('base64url')}`);
  return e && e.operation === 'PUT' ? e.json() : undefined;
};

const enabled = hasTool('nats-server', 'nats-server');

describe.runIf(enabled)('Beep across nodes', () => {
  beforeAll(async () => {
    cluster = await startBeepCluster(
      perms,
      ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'henry'],
      ['standup', 'retro', 'race-a', 'race-b'],
    );
    nats = await connect({ servers: cluster.nats.url, maxReconnectAttempts: -1 });
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await nats?.close();
    await cluster?.stop();
    await perms.stop();
  });

  it('a join on one node moves the connections another node holds; the answers are the one-node ones', async () => {
    await connectTo(1, 'alice');
    await connectTo(2, 'bob');
    // Asked of node 0, which holds neither connection.
    expect(await join(0, 'standup', 'alice')).toEqual({ status: 200, text: '' });
    expect(await join(0, 'standup', 'bob')).toEqual({ status: 200, text: '' });
    // Each node holds one member; every node counts both.
    expect(await gauge(1, 'chorus_beep_conversations')).toBe(1);
    expect(await gauge(2, 'chorus_beep_conversations')).toBe(1);
    expect(await gauge(0, 'chorus_beep_conversations')).toBe(0);
    for (const i of [0, 1, 2]) expect(await members(i, 'standup')).toBe(2);
    // Permissions are asked wherever the join lands, and a refusal changes nothing.
    expect(await join(2, 'secret', 'alice')).toEqual({
      status: 401,
      text: 'not allowed to join this conversation',
    });
    expect(await members(0, 'standup')).toBe(2);
  }, 60_000);

  it('a user is in one conversation cluster-wide: joining another on any node leaves the first', async () => {
    expect(await join(2, 'retro', 'alice')).toEqual({ status: 200, text: '' });
    expect([await members(0, 'standup'), await members(0, 'retro')]).toEqual([1, 1]);
    expect(await userRecord('alice')).toMatchObject({ conversation: 'retro', holders: [{ node: 'node-1' }] });
  }, 30_000);

  it('a user who joins before connecting is placed when their connection arrives, on any node', async () => {
    expect(await join(0, 'retro', 'carol')).toEqual({ status: 200, text: '' });
    await connectTo(2, 'carol');
    await eventually(async () => (await members(1, 'retro')) === 2, 10_000, 'carol in retro');
  }, 30_000);

  it("a client's new connection on another node replaces its old one", async () => {
    await connectTo(0, 'erin', 'phone');
    expect(await gauge(0, 'chorus_beep_connections')).toBe(1);
    await connectTo(2, 'erin', 'phone');
    await eventually(async () => (await gauge(0, 'chorus_beep_connections')) === 0, 10_000, 'old one closed');
    await eventually(
      async () => {
        const r = (await userRecord('erin')) as { holders: Array<{ node: string }> } | undefined;
        return r?.holders.map((h) => h.node).join() === 'node-2';
      },
      10_000,
      'only node-2 holds erin',
    );
  }, 30_000);

  it('two joins racing on two nodes end where the store ended: the user is in exactly that one', async () => {
    await connectTo(1, 'frank');
    for (let round = 0; round < 5; round++) {
      const [a, b] = await Promise.all([join(0, 'race-a', 'frank'), join(2, 'race-b', 'frank')]);
      expect([a.status, b.status]).toEqual([200, 200]);
      const won = ((await userRecord('frank')) as { conversation: string }).conversation;
      const lost = won === 'race-a' ? 'race-b' : 'race-a';
      expect([await members(0, won), await members(0, lost)]).toEqual([1, 0]);
    }
  }, 60_000);

  it('the record goes with the last connection', async () => {
    const bob = clients[1]!;
    expect(await userRecord('bob')).toMatchObject({ conversation: 'standup' });
    bob.close();
    await eventually(async () => (await userRecord('bob')) === undefined, 40_000, "bob's record deleted");
    expect(await members(0, 'standup')).toBe(0);
  }, 60_000);

  it('malformed bus messages are logged and dropped; the node goes on', async () => {
    const subject = 'chorus.node.node-0.beep.user';
    nats.publish(subject, 'not json at all');
    nats.publish(subject, JSON.stringify({ op: 'sync' }));
    await expect(
      nats.request(subject, JSON.stringify({ op: 'explode', userid: 'x' }), { timeout: 500 }),
    ).rejects.toThrow();
    nats.publish('chorus.node.node-0.beep.members', JSON.stringify({ conversation: 7 }));
    await eventually(
      () =>
        /bus message is not JSON, dropped/.test(cluster.nodes[0]!.process.output()) &&
        /bus message of the wrong shape, dropped/.test(cluster.nodes[0]!.process.output()),
      10_000,
      'the drop lines',
    );
    expect(await join(0, 'standup', 'dave')).toEqual({ status: 200, text: '' });
    expect(await members(0, 'retro')).toBe(2);
  }, 30_000);

  it("a node that dies: the others strike it from its users' records", async () => {
    await connectTo(1, 'dave');
    expect(await join(0, 'standup', 'dave')).toEqual({ status: 200, text: '' });
    expect(await userRecord('dave')).toMatchObject({
      conversation: 'standup',
      holders: [{ node: 'node-1' }],
    });
    cluster.nodes[1]!.process.kill('SIGKILL');
    await cluster.nodes[1]!.process.exited;
    // alice's (she was on node 1 only) goes; carol's, on node 2, stays.
    await eventually(async () => (await userRecord('dave')) === undefined, 30_000, "dave's record cleared");
    await eventually(async () => (await userRecord('alice')) === undefined, 5_000, "alice's record cleared");
    expect(await userRecord('carol')).toMatchObject({ conversation: 'retro', holders: [{ node: 'node-2' }] });
    // dave connects again elsewhere and joins at once.
    await connectTo(2, 'dave');
    expect(await join(0, 'standup', 'dave')).toEqual({ status: 200, text: '' });
    expect(await members(2, 'standup')).toBe(1);
  }, 90_000);

  it('while NATS is out of reach a join answers 503 with Retry-After, and works again once it is back', async () => {
    // A user whose last connection closes while NATS is away: struck from the record once it is back.
    const gina = await connectTo(2, 'gina');
    await eventually(async () => (await userRecord('gina')) !== undefined, 10_000, "gina's record");
    const before = await gauge(2, 'chorus_beep_connections');
    await cluster.nats.stop();
    try {
      gina.close();
      await eventually(
        async () => (await gauge(2, 'chorus_beep_connections')) === before - 1,
        60_000,
        "gina's connection gone",
      );
      // henry is not connected anywhere: his record is only what the join writes.
      const r = await fetch(`${node(0)}/join/standup`, { method: 'POST', headers: claim('henry') });
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await r.text()).not.toBe('');
    } finally {
      await cluster.nats.start();
    }
    await eventually(async () => (await join(0, 'standup', 'henry')).status === 200, 60_000, 'joins again');
    // The test's own reads may time out while JetStream recovers: asked again until they answer.
    await eventually(
      async () =>
        ((await userRecord('henry').catch(() => undefined)) as { conversation?: string } | undefined)
          ?.conversation === 'standup',
      60_000,
      "henry's record in standup",
    );
    await eventually(
      async () => {
        const record = await userRecord('gina').catch(() => 'unreadable');
        return record === undefined;
      },
      60_000,
      "gina's record gone",
    );
  }, 240_000);
});
