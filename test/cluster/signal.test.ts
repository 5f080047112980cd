import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { hasTool } from '../fixtures/system-tools.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

// Signal across three real Chorus processes sharing one nats-server (bus and store):
// users register on one node, connect on others, and talk across them.

const ADMIN = 'cluster-admin-token-0123456789';
/** Names expire fast here, so the expiry test runs in seconds (2 s, swept every second). */
const NAME_TTL_DAYS = 2 / 86_400;
/** Node 1 never sweeps: the expiry test keeps a user there, judged only by the others. */
const NO_SWEEP_NODE = 1;

let cluster: Cluster;
let nc: NatsConnection;
const url = (i: number): string => cluster.nodes[i]!.url;
const wsUrl = (i: number): string => url(i).replace(/^http/, 'ws');
const sockets: TestSocket[] = [];

/** Registers `name` on node `i`; the cookie header that carries every cookie it set. */
async function register(
  i: number,
  name: string,
  ip = '192.0.2.10',
): Promise<{ status: string; cookie: string }> {
  const res = await fetch(`${url(i)}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ username: name }),
  });
  const body = (await res.json()) as { status: string };
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  return { status: body.status, cookie };
}

async function connect(i: number, cookie: string): Promise<TestSocket> {
  const s = await TestSocket.open(`${wsUrl(i)}/v1/connect`, { cookie });
  sockets.push(s);
  return s;
}

/**
 * Waits until `from` reaches `target` (a probe the target sees): a connection's bus
 * subscription reaches nats-server a moment after its socket opens, and a message sent
 * in between finds nobody (TARGET_NOT_FOUND), as for a user not yet connected.
 */
async function reachable(from: TestSocket, target: string, to: TestSocket): Promise<void> {
  let n = 0;
  await eventually(
    async () => {
      const probe = `probe-${n++}`;
      from.send({ target, type: 'probe', payload: probe });
      try {
        await to.next((m) => m.includes(probe), 300);
        return true;
      } catch {
        return false;
      }
    },
    10_000,
    `${target} reachable`,
  );
}

/** The payloads of the messages of `type` that `s` received (from message `from` on). */
const payloads = (s: TestSocket, type: string, from = 0): unknown[] =>
  s.messages
    .slice(from)
    .map((m) => JSON.parse(m) as { type: string; payload: unknown })
    .filter((m) => m.type === type)
    .map((m) => m.payload);

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('Signal across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      env: {
        ADMIN_TOKEN: ADMIN,
        TRUST_PROXY: '127.0.0.1',
        SIGNAL_RATE_LIMIT: '5000',
        SIGNAL_RATE_BURST: '5000',
        SIGNAL_REGISTER_RATE_PER_MINUTE: '0',
        SIGNAL_MAX_NAMES_PER_IP_PER_DAY: '0',
        SIGNAL_NAME_TTL_DAYS: String(NAME_TTL_DAYS),
        // Only Signal is under test; the other surfaces stay out of these processes.
        VOIP_ENABLED: 'no',
        BEEP_ENABLED: 'no',
        STREAM_ENABLED: 'no',
        BLUESKY_ENABLED: 'no',
      },
      nodeEnv: (i) => (i === NO_SWEEP_NODE ? { SIGNAL_NAME_TTL_DAYS: '0' } : {}),
    });
    nc = await natsConnect({ servers: cluster.nats.url });
  }, 90_000);

  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await nc?.close();
    await cluster?.stop();
  });

  it('registers on one node and connects with that session on every other (one cookie secret)', async () => {
    const r = await register(0, 'xn-alice');
    expect(r.status).toBe('SUCCESS');
    for (const i of [1, 2]) {
      const user = await fetch(`${url(i)}/v1/user`, { headers: { cookie: r.cookie } });
      expect(user.status).toBe(200);
    }
    const s = await connect(2, r.cookie);
    s.send({ target: 'xn-alice', type: 'self', payload: 1 });
    expect(JSON.parse(await s.next((m) => m.includes('"self"'), 10_000))).toMatchObject({
      originator: 'xn-alice',
    });
    // The name is taken cluster-wide: registering it on another node is refused.
    expect((await register(1, 'xn-alice', '192.0.2.11')).status).toBe('TAKEN');
    s.close();
  });

  it('delivers hundreds of messages between users on different nodes, in order, both ways', async () => {
    const a = await register(0, 'ord-a');
    const b = await register(1, 'ord-b');
    const sa = await connect(0, a.cookie);
    const sb = await connect(1, b.cookie);
    await reachable(sa, 'ord-b', sb);
    await reachable(sb, 'ord-a', sa);
    // Probes sent before a subscription had reached nats-server were answered as offline.
    const [fromA, fromB] = [sa.messages.length, sb.messages.length];
    const N = 400;
    for (let i = 0; i < N; i++) {
      sa.send({ target: 'ord-b', type: 'n', payload: i });
      sb.send({ target: 'ord-a', type: 'n', payload: i });
    }
    const expected = Array.from({ length: N }, (_, i) => i);
    await eventually(
      () => payloads(sb, 'n').length >= N && payloads(sa, 'n').length >= N,
      30_000,
      'all messages',
    );
    expect(payloads(sb, 'n')).toEqual(expected);
    expect(payloads(sa, 'n')).toEqual(expected);
    // Nobody was told TARGET_NOT_FOUND for a message that arrived.
    expect(payloads(sa, 'TARGET_NOT_FOUND', fromA)).toEqual([]);
    expect(payloads(sb, 'TARGET_NOT_FOUND', fromB)).toEqual([]);
    sa.close();
    sb.close();
  });

  it('answers TARGET_NOT_FOUND for a user offline everywhere, and once a user on another node left', async () => {
    const a = await register(2, 'off-a');
    const b = await register(0, 'off-b');
    await register(1, 'off-never');
    const sa = await connect(2, a.cookie);
    const sb = await connect(0, b.cookie);
    await reachable(sa, 'off-b', sb);
    sa.send({ target: 'off-never', type: 'x' });
    expect(await sa.next((m) => m.includes('TARGET_NOT_FOUND'), 10_000)).toBe(
      '{"target":"","type":"TARGET_NOT_FOUND","payload":null}',
    );
    sb.close();
    await sb.closed;
    // Once node 0 has let go of off-b's subscription, its messages are answered as offline.
    await eventually(
      () => {
        sa.send({ target: 'off-b', type: 'x' });
        return payloads(sa, 'TARGET_NOT_FOUND').length >= 2;
      },
      15_000,
      'off-b answered as offline',
    );
    sa.close();
  });

  it("answers TARGET_NOT_FOUND once a target on another node stops reading, and keeps the sender's other messages flowing in order", async () => {
    const [s, slow, fast] = await Promise.all([
      register(0, 'slow-sender'),
      register(1, 'slow-target'),
      register(2, 'slow-other'),
    ]);
    const ss = await connect(0, s.cookie);
    const st = await connect(1, slow.cookie);
    const sf = await connect(2, fast.cookie);
    await reachable(ss, 'slow-target', st);
    await reachable(ss, 'slow-other', sf);
    const [fromS, fromF] = [ss.messages.length, sf.messages.length];
    // The target's client stops reading: node 1's queue to it grows until it is closed.
    (st.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = 'x'.repeat(48 * 1024);
    let n = 0;
    await eventually(
      () => {
        for (let i = 0; i < 10; i++) ss.send({ target: 'slow-target', type: 'big', payload: big });
        ss.send({ target: 'slow-other', type: 'n', payload: n++ });
        return payloads(ss, 'TARGET_NOT_FOUND', fromS).length > 0;
      },
      30_000,
      'the sender to hear TARGET_NOT_FOUND for the stalled target',
    );
    await eventually(() => payloads(sf, 'n', fromF).length === n, 10_000, 'every message to the other user');
    expect(payloads(sf, 'n', fromF)).toEqual(Array.from({ length: n }, (_, i) => i));
    ss.close();
    sf.close();
    st.ws.terminate();
  }, 60_000);

  it('replaces a connection by a newer one of the same user on another node (4001), as on one node', async () => {
    const a = await register(0, 'rep-a');
    const b = await register(1, 'rep-b');
    const first = await connect(0, a.cookie);
    const sb = await connect(1, b.cookie);
    await reachable(sb, 'rep-a', first);
    const second = await connect(2, a.cookie);
    expect(await first.closed).toEqual({ code: 4001, reason: 'REPLACED' });
    await reachable(sb, 'rep-a', second);
    sb.send({ target: 'rep-a', type: 'hi' });
    expect(JSON.parse(await second.next((m) => m.includes('"hi"'), 10_000)).originator).toBe('rep-b');
    second.close();
    sb.close();
  });

  it('settles two connections of one user opened at the same instant on two nodes on exactly one', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `race-${round}`;
      const r = await register(0, name);
      const pair = await Promise.all([connect(1, r.cookie), connect(2, r.cookie)]);
      // One of the two is replaced; the other stays open and is the one messages reach.
      const loser = await Promise.race(pair.map((s, i) => s.closed.then((c) => ({ i, c }))));
      expect(loser.c).toEqual({ code: 4001, reason: 'REPLACED' });
      const winner = pair[1 - loser.i]!;
      expect(winner.ws.readyState).toBe(winner.ws.OPEN);
      const other = await register(0, `race-peer-${round}`);
      const peer = await connect(0, other.cookie);
      await reachable(peer, name, winner);
      expect(winner.ws.readyState).toBe(winner.ws.OPEN);
      winner.close();
      peer.close();
    }
  });

  it('keeps the newer of two claims on one user, in whatever order the nodes hear them', async () => {
    const r = await register(0, 'claim-order');
    const s = await connect(0, r.cookie);
    const subject = 'chorus.presence.signal.claim.claim-order';
    const heard: Array<{ id: string; at: number }> = [];
    const sub = nc.subscribe(subject, {
      callback: (_err, m) => {
        heard.push(m.json<{ id: string; at: number }>());
      },
    });
    await nc.flush();
    // A claim older than the holder's, heard late (say a node slow to announce a connection
    // made just before this one): the holder stays, and says again that it holds the user,
    // so that the older connection hears it and steps aside.
    const older = { id: randomUUID(), at: 1 };
    nc.publish(subject, JSON.stringify(older));
    await eventually(
      () => heard.some((c) => c.id !== older.id && c.at > older.at),
      10_000,
      'the holder to repeat its claim',
    );
    expect(s.ws.readyState).toBe(s.ws.OPEN);
    // A newer claim takes the user over.
    nc.publish(subject, JSON.stringify({ id: randomUUID(), at: Date.now() + 1000 }));
    expect(await s.closed).toEqual({ code: 4001, reason: 'REPLACED' });
    sub.unsubscribe();
  });

  it('kicks the active users of every node from any node', async () => {
    const users = await Promise.all([0, 1, 2].map((i) => register(i, `kick-${i}`)));
    const open = await Promise.all(users.map((u, i) => connect(i, u.cookie)));
    await reachable(open[0]!, 'kick-2', open[2]!);
    const res = await fetch(`${url(1)}/v1/kick-active-users`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(200);
    for (const s of open) expect(await s.closed).toEqual({ code: 4002, reason: 'KICKED' });
  });

  it('never expires a name connected to another node; unused names expire; nodes sweep side by side', async () => {
    // busy is registered first, so every sweep that expires idle judged busy as stale too.
    const busy = await register(0, 'exp-busy', '198.51.100.1');
    const holder = await connect(NO_SWEEP_NODE, busy.cookie);
    expect((await register(2, 'exp-idle', '198.51.100.1')).status).toBe('SUCCESS');
    // Nodes 0 and 2 sweep; node 1 (holding exp-busy's socket) never does.
    await eventually(
      async () => (await register(0, 'exp-idle', '198.51.100.2')).status === 'SUCCESS',
      20_000,
      'the idle name to expire and be free again',
    );
    expect((await register(2, 'exp-busy', '198.51.100.2')).status).toBe('TAKEN');
    expect((await fetch(`${url(0)}/v1/user`, { headers: { cookie: busy.cookie } })).status).toBe(200);
    expect(holder.ws.readyState).toBe(holder.ws.OPEN);
    for (const n of cluster.nodes) expect(n.process.output()).not.toMatch(/sweep failed/);
    holder.close();
  });

  it('drops malformed claims off the bus (logged) and keeps serving', async () => {
    const a = await register(0, 'bad-bus');
    const s = await connect(2, a.cookie);
    const subject = 'chorus.presence.signal.claim.bad-bus';
    for (const data of [
      'not json',
      '{"id":"x","at":1}',
      '{"id":"00000000-0000-0000-0000-000000000000"}',
      JSON.stringify({ id: '00000000-0000-0000-0000-000000000000', at: Date.now() + 3_600_000 }),
      '[]',
      'null',
    ]) {
      nc.publish(subject, data);
    }
    await nc.flush();
    await eventually(
      () => cluster.nodes.every((n) => n.process.output().includes('malformed claim')),
      10_000,
      'every node to log the malformed claims',
    );
    // The connection was not replaced by any of them, and still gets its messages.
    expect(s.ws.readyState).toBe(s.ws.OPEN);
    s.send({ target: 'bad-bus', type: 'still-here' });
    expect(await s.next((m) => m.includes('still-here'), 10_000)).toContain('"originator":"bad-bus"');
    s.close();
  });
});
