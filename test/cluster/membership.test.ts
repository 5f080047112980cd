import { Kvm } from '@nats-io/kv';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChorusToExit } from '../fixtures/chorus-process.js';
import { killNode, startCluster, type Cluster } from '../fixtures/cluster.js';
import { hasTool } from '../fixtures/system-tools.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

// Membership across three real Chorus processes sharing one nats-server: they see each
// other, a SIGKILLed node is dropped by the others within the bound and its users connect
// elsewhere at once, a restarted node rejoins, and a node that would corrupt shared state
// (same id as a live node, another wire protocol) is refused at start.

const ADMIN = 'cluster-admin-token-0123456789';
/** The bound for "a node that stops is seen as gone" (heartbeat 2 s, stale 6 s, sweep 1 s). */
const GONE_WITHIN_MS = 10_000;
/** Heartbeats older than this make a node stale (src/ports/membership/nats-membership.ts). */
const STALE_MS = 6_000;
/** Slack for a 2-core box shared by other test processes: timers run late under load. */
const SLACK_MS = 5_000;

interface NodeView {
  id: string;
  instance: string;
  httpUrl?: string;
  protocol: number;
  version: string;
  load: { connections: number; eventLoopUtilization: number };
  heardMsAgo: number | null;
}

let cluster: Cluster;
let nc: NatsConnection;
const dirs: string[] = [];
const sockets: TestSocket[] = [];
const url = (i: number): string => cluster.nodes[i]!.url;

async function nodesSeenBy(i: number): Promise<NodeView[]> {
  const res = await fetch(`${url(i)}/cluster/nodes`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { self: string; nodes: NodeView[] };
  expect(body.self).toBe(`node-${i}`);
  return body.nodes;
}

const ids = (nodes: NodeView[]): string[] => nodes.map((n) => n.id).sort();

async function register(i: number, name: string): Promise<string> {
  const res = await fetch(`${url(i)}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name }),
  });
  expect(((await res.json()) as { status: string }).status).toBe('SUCCESS');
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
}

async function connect(i: number, cookie: string): Promise<TestSocket> {
  const s = await TestSocket.open(`${url(i).replace(/^http/, 'ws')}/v1/connect`, { cookie });
  sockets.push(s);
  return s;
}

/**
 * Waits until a message from `from` to `target` arrives on `to`, sending a fresh probe
 * each try: a connection's bus subscription reaches nats-server a moment after its socket
 * opens, and a message sent in between finds nobody, as for a user not yet connected.
 */
async function reaches(
  from: TestSocket,
  target: string,
  to: TestSocket,
  type: string,
  timeoutMs: number,
): Promise<void> {
  let n = 0;
  await eventually(
    async () => {
      const probe = `${type}-${n++}`;
      from.send({ target, type, payload: probe });
      try {
        await to.next((m) => m.includes(probe), 300);
        return true;
      } catch {
        return false;
      }
    },
    timeoutMs,
    `a ${type} message to ${target}`,
  );
}

const output = (i: number): string => cluster.nodes[i]!.process.output();

/** Lines of a node's log that say a node is gone (one per instance and observer). */
function goneLines(i: number, goneId: string): string[] {
  return cluster.nodes[i]!.process.output()
    .split('\n')
    .filter((l) => l.includes('"msg":"node gone"') && l.includes(`"node":"${goneId}"`));
}

/**
 * Waits for node `i` to have logged `n` "node gone" lines for `goneId` (its stdout reaches
 * the test a moment after its HTTP answers), then checks there are exactly `n`.
 */
async function goneLogged(i: number, goneId: string, n: number): Promise<void> {
  await eventually(() => goneLines(i, goneId).length >= n, 5_000, `node-${i} logs ${goneId} gone`);
  expect(goneLines(i, goneId)).toHaveLength(n);
}

/** Starts one more process against the cluster's NATS and waits for it to exit. */
async function extraNode(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-extra-'));
  dirs.push(dataDir);
  return runChorusToExit({
    BIND_ADDRESS: '127.0.0.1',
    HTTP_PORT: '0',
    DATA_DIR: dataDir,
    CLUSTER_NATS_URL: cluster.nats.url,
    ...env,
  });
}

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('cluster membership', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      env: {
        ADMIN_TOKEN: ADMIN,
        SIGNAL_REGISTER_RATE_PER_MINUTE: '0',
        SIGNAL_MAX_NAMES_PER_IP_PER_DAY: '0',
        VOIP_ENABLED: 'no',
        BEEP_ENABLED: 'no',
        STREAM_ENABLED: 'no',
        BLUESKY_ENABLED: 'no',
      },
    });
    nc = await natsConnect({ servers: cluster.nats.url });
  }, 90_000);

  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await nc?.close();
    await cluster?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('every node lists the three, each with its own URL, version and wire protocol; admin only', async () => {
    for (const i of [0, 1, 2]) {
      // Each node joins before it listens, then tells its URL: wait for all three URLs.
      await eventually(
        async () => {
          const nodes = await nodesSeenBy(i);
          return nodes.length === 3 && nodes.every((n) => n.httpUrl !== undefined);
        },
        15_000,
        `node-${i} sees three with their URLs`,
      );
      const nodes = await nodesSeenBy(i);
      expect(ids(nodes)).toEqual(['node-0', 'node-1', 'node-2']);
      for (const [j, n] of nodes.entries()) {
        expect(n.httpUrl).toBe(url(j));
        expect(n.protocol).toBe(1);
        expect(n.version).toMatch(/^\d+\.\d+\.\d+/);
        expect(n.load.eventLoopUtilization).toBeGreaterThanOrEqual(0);
      }
    }
    const anonymous = await fetch(`${url(0)}/cluster/nodes`);
    expect(anonymous.status).toBe(401);
    const wrong = await fetch(`${url(0)}/cluster/nodes`, {
      headers: { authorization: 'Bearer nope-nope-nope-nope' },
    });
    expect(wrong.status).toBe(401);
  });

  it('/readyz shows the connection and the node count; /metrics the cluster size and bus round trips', async () => {
    const ready = (await (await fetch(`${url(1)}/readyz`)).json()) as {
      ready: boolean;
      components: Record<string, boolean>;
      details: { cluster: { node: string; nodes: number; ids: string[] } };
    };
    expect(ready.ready).toBe(true);
    expect(ready.components.cluster).toBe(true);
    expect(ready.details.cluster).toEqual({ node: 'node-1', nodes: 3, ids: ['node-0', 'node-1', 'node-2'] });
    // Pings run every 5 s, to each of the three nodes.
    let text = '';
    await eventually(
      async () => {
        text = await (await fetch(`${url(1)}/metrics`)).text();
        const count = /^chorus_cluster_bus_rtt_seconds_count (\d+)/m.exec(text);
        return Number(count?.[1] ?? 0) >= 3;
      },
      15_000,
      'bus round trips in /metrics',
    );
    expect(text).toMatch(/^chorus_cluster_nodes 3$/m);
  });

  it('drops malformed member entries and pings with odd payloads without harm', async () => {
    const kv = await new Kvm(nc).open('chorus-nodes');
    await kv.put('bogus', 'not json');
    await kv.put(
      'forged',
      JSON.stringify({
        id: 'someone-else',
        instance: 'x',
        load: {},
        version: '1',
        protocol: 1,
        startedAt: '',
      }),
    );
    await kv.put('halfway', JSON.stringify({ id: 'halfway', instance: 'x' }));
    nc.publish('chorus.node.node-0.ping', new Uint8Array([0xff, 0x00, 0x7b]));
    const answer = await nc.request('chorus.node.node-0.ping', '{"garbage":', { timeout: 2000 });
    expect(answer.data.length).toBeGreaterThan(0);
    for (const i of [0, 1, 2]) {
      await eventually(
        () =>
          ['bogus', 'forged', 'halfway'].every((key) =>
            output(i)
              .split('\n')
              .some(
                (l) => l.includes('malformed cluster member entry dropped') && l.includes(`"key":"${key}"`),
              ),
          ),
        10_000,
        `node-${i} logs the malformed entry`,
      );
      expect(ids(await nodesSeenBy(i))).toEqual(['node-0', 'node-1', 'node-2']);
      // The nodes' own announcements always parse (no NaN load on the first beat).
      expect(output(i)).not.toMatch(
        /malformed cluster member entry dropped.*"key":"node-|"key":"node-[^"]*".*malformed cluster member/,
      );
    }
    await kv.delete('bogus');
    await kv.delete('forged');
    await kv.delete('halfway');
  });

  it("refuses a second process with a live node's id: one line, exit 2, and the cluster is unchanged", async () => {
    const r = await extraNode({ CLUSTER_NODE_ID: 'node-0' });
    expect(r.code).toBe(2);
    expect(r.output).toMatch(
      /^chorus: node id node-0 is already held by a live node \(http:\/\/127\.0\.0\.1:\d+\); give each node its own CLUSTER_NODE_ID$/m,
    );
    expect(ids(await nodesSeenBy(0))).toEqual(['node-0', 'node-1', 'node-2']);
    // The live node-0 is still the one listed (not the refused process).
    expect((await nodesSeenBy(1)).find((n) => n.id === 'node-0')?.httpUrl).toBe(url(0));
  });

  it('refuses a node speaking another wire protocol: one line, exit 2, never listed', async () => {
    const r = await extraNode({ CLUSTER_NODE_ID: 'node-new', CLUSTER_WIRE_PROTOCOL: '2' });
    expect(r.code).toBe(2);
    expect(r.output).toMatch(
      /^chorus: the cluster speaks wire protocol 1 \(node node-\d, Chorus [^)]+\) but this node speaks 2 .*; run one Chorus release on every node$/m,
    );
    expect(ids(await nodesSeenBy(2))).toEqual(['node-0', 'node-1', 'node-2']);
  });

  it('NATS down for longer than the stale period: nobody is declared gone, all three are heard again after', async () => {
    await cluster.nats.stop();
    try {
      // Wait until every node has not heard from the others for longer than the stale
      // period (6 s): they are still listed, since the silence is each node's own.
      for (const i of [0, 1, 2]) {
        await eventually(
          async () =>
            (await nodesSeenBy(i)).every(
              (n) => n.id === `node-${i}` || (n.heardMsAgo ?? 0) > STALE_MS + 1000,
            ),
          30_000,
          `node-${i} has heard nobody for longer than the stale period`,
        );
        expect(ids(await nodesSeenBy(i))).toEqual(['node-0', 'node-1', 'node-2']);
        expect(output(i)).toContain('cluster view paused');
      }
      const down = await fetch(`${url(0)}/readyz`);
      expect(down.status).toBe(503);
      expect(((await down.json()) as { components: Record<string, boolean> }).components.cluster).toBe(false);
      expect(ids(await nodesSeenBy(0))).toEqual(['node-0', 'node-1', 'node-2']);
    } finally {
      await cluster.nats.start();
    }
    for (const i of [0, 1, 2]) {
      await eventually(
        () => output(i).includes('cluster view resumed'),
        30_000,
        `node-${i} resumes its view`,
      );
    }
    // Heard again from everyone (heartbeats every 2 s): nobody will go stale from here.
    for (const i of [0, 1, 2]) {
      await eventually(
        async () => (await nodesSeenBy(i)).every((n) => n.heardMsAgo !== null && n.heardMsAgo < 3000),
        15_000,
        `node-${i} hears all three again`,
      );
      expect(ids(await nodesSeenBy(i))).toEqual(['node-0', 'node-1', 'node-2']);
      expect(output(i)).not.toContain('"msg":"node gone"');
    }
  });

  it('SIGKILL: its Signal user connects to another node at once and gets messages there; the others drop it within 10 s, once each', async () => {
    const alice = await register(0, 'gone-alice');
    const bob = await register(0, 'gone-bob');
    const onVictim = await connect(2, alice);
    const sender = await connect(0, bob);
    await reaches(sender, 'gone-alice', onVictim, 'before', 10_000);

    await killNode(cluster.nodes[2]!.process);
    const killedAt = Date.now();
    // At once: no waiting for the others to notice; the victim's bus subscriptions died with it.
    const moved = await connect(1, alice);
    // Within 5 s: the time for her new connection's subscription to reach nats-server.
    await reaches(sender, 'gone-alice', moved, 'after', 5_000);

    await eventually(
      async () => ids(await nodesSeenBy(0)).length === 2 && ids(await nodesSeenBy(1)).length === 2,
      GONE_WITHIN_MS + SLACK_MS - (Date.now() - killedAt),
      'node-2 dropped by node-0 and node-1',
    );
    expect(ids(await nodesSeenBy(0))).toEqual(['node-0', 'node-1']);
    expect(ids(await nodesSeenBy(1))).toEqual(['node-0', 'node-1']);
    await goneLogged(0, 'node-2', 1);
    await goneLogged(1, 'node-2', 1);
    const ready = (await (await fetch(`${url(0)}/readyz`)).json()) as {
      details: { cluster: { nodes: number } };
    };
    expect(ready.details.cluster.nodes).toBe(2);
  });

  it("a node starting while a dead node's entry is still in the bucket does not take it for alive", async () => {
    // node-2 was killed in the test before: its entry stays up to 30 s (the bucket's max age).
    await cluster.restart(1);
    await eventually(
      async () => ids(await nodesSeenBy(1)).includes('node-0'),
      15_000,
      'the restarted node-1 sees node-0',
    );
    expect(ids(await nodesSeenBy(1))).toEqual(['node-0', 'node-1']);
    expect(output(1)).not.toMatch(/"node":"node-2".*"msg":"node joined"/);
    // node-0 saw node-1's old instance go and its new one join.
    await goneLogged(0, 'node-1', 1);
    await eventually(
      async () => (await nodesSeenBy(0)).find((n) => n.id === 'node-1')?.httpUrl === url(1),
      15_000,
      'node-0 sees the new node-1',
    );
  });

  it('a killed node restarted with its id rejoins at once (its old entry is not a live holder)', async () => {
    const before = (await nodesSeenBy(0)).map((n) => n.instance);
    await cluster.restart(2);
    for (const i of [0, 1, 2]) {
      await eventually(
        async () => ids(await nodesSeenBy(i)).length === 3,
        15_000,
        `node-${i} sees node-2 back`,
      );
    }
    const back = (await nodesSeenBy(0)).find((n) => n.id === 'node-2')!;
    expect(back.httpUrl).toBe(url(2));
    expect(before).not.toContain(back.instance);
    // Killed right after a restart, before anyone saw it stale: still one "gone" per observer.
    await killNode(cluster.nodes[2]!.process);
    await eventually(
      async () => ids(await nodesSeenBy(0)).length === 2,
      GONE_WITHIN_MS + SLACK_MS,
      'node-2 dropped again',
    );
    await goneLogged(0, 'node-2', 2);
  });

  it('a node that stops cleanly (SIGTERM) is dropped at once, before any heartbeat could go stale', async () => {
    const p = cluster.nodes[1]!.process;
    p.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    // Its entry is deleted on the way out: well under the stale period.
    await eventually(
      async () => ids(await nodesSeenBy(0)).length === 1,
      3_000,
      'node-1 dropped on its leave',
    );
    await goneLogged(0, 'node-1', 2); // its restart above, then this stop
  });
});
