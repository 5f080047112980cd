import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually, within } from '../fixtures/ws-client.js';

/**
 * nats-server lost and restarted under a running cluster (issue 14, item 5): requests
 * that need the store answer 503 with a clear body at once instead of hanging, /readyz
 * says why, /healthz stays up, the nodes reconnect by themselves, stored state survives
 * (JetStream file store), and no node dies, with or without load during the outage.
 */

interface Answer {
  status: number;
  retryAfter: string | null;
  body: unknown;
}

/** Every request bounded: a hang fails the test instead of stalling it. */
async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const type = res.headers.get('content-type') ?? '';
  const body: unknown = type.includes('json') ? await res.json() : await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
}

const register = (node: string, username: string): Promise<Answer> =>
  call(`${node}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username }),
  });

const createRoom = (node: string): Promise<Answer> =>
  call(`${node}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: 'faults' }),
  });

/** The name is held already: the seed answers TAKEN (its status code has changed over time). */
const taken = (a: Answer): boolean => (a.body as { status?: unknown }).status === 'TAKEN';

const readyz = async (node: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const a = await call(`${node}/readyz`);
  return { status: a.status, body: a.body as Record<string, unknown> };
};

describe.runIf(hasTool('nats-server', 'nats-server'))('cluster: nats-server lost and restarted', () => {
  let cluster: Cluster;
  const url = (i: number): string => cluster.nodes[i]!.url;
  const allAlive = (): boolean =>
    cluster.nodes.every((n) => n.process.child.exitCode === null && n.process.child.signalCode === null);

  beforeAll(async () => {
    cluster = await startCluster({
      env: {
        // All requests come from 127.0.0.1: the per-address quotas would refuse the load loop.
        SIGNAL_REGISTER_RATE_PER_MINUTE: '0',
        SIGNAL_MAX_NAMES_PER_IP_PER_DAY: '0',
        BLUESKY_ROOM_CREATE_RATE_PER_MINUTE: '0',
        BLUESKY_MAX_OPEN_ROOMS_PER_IP: '0',
      },
    });
  }, 90_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const lose = async (): Promise<void> => {
    await cluster.nats.stop(); // SIGKILL by PID
    for (let i = 0; i < cluster.nodes.length; i++) {
      await eventually(
        async () => (await readyz(url(i))).status === 503,
        15_000,
        `node ${i} to report not ready`,
      );
    }
  };

  const restore = async (): Promise<void> => {
    await cluster.nats.start(); // same port, same JetStream store directory
    for (let i = 0; i < cluster.nodes.length; i++) {
      await eventually(
        async () => (await readyz(url(i))).status === 200,
        30_000,
        `node ${i} to be ready again`,
      );
    }
    // Connected is not yet served: JetStream recovers its streams a moment later.
    for (let i = 0; i < cluster.nodes.length; i++) {
      await eventually(
        async () => (await register(url(i), 'probe-after-restart')).status !== 503,
        30_000,
        `node ${i} to reach the store again`,
      );
    }
  };

  it('answers 503 with a clear body while NATS is gone, then carries on with its data', async () => {
    expect((await register(url(0), 'alice')).body).toEqual({ status: 'SUCCESS', message: '' });
    expect(taken(await register(url(1), 'alice'))).toBe(true);

    await lose();
    const ready = await readyz(url(1));
    expect(ready.body.ready).toBe(false);
    expect((ready.body.components as Record<string, boolean>).cluster).toBe(false);
    expect((ready.body.reasons as Record<string, string>).cluster).toMatch(/not connected to NATS/);
    expect((await call(`${url(1)}/healthz`)).status).toBe(200);

    // Answered at once (bounded well under the client's own timeouts), not left hanging.
    const refused = await within(register(url(1), 'bob'), 3000, 'the Signal refusal');
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toMatch(/^\d+$/);
    expect(refused.body).toMatchObject({ status: 'UNAVAILABLE', message: expect.stringMatching(/NATS/) });
    const again = await within(register(url(2), 'alice'), 3000, 'the Signal refusal');
    expect(again.status).toBe(503);
    const room = await within(createRoom(url(2)), 3000, 'the Blue Sky refusal');
    expect(room.status).toBe(503);
    expect(room.retryAfter).toMatch(/^\d+$/);
    expect(room.body).toEqual({ error: expect.stringMatching(/NATS/) });

    await restore();
    // The registration made before the outage is still there, read from another node.
    expect(taken(await register(url(2), 'alice'))).toBe(true);
    expect((await register(url(1), 'bob')).body).toEqual({ status: 'SUCCESS', message: '' });
    expect(taken(await register(url(0), 'bob'))).toBe(true);
    expect((await createRoom(url(0))).status).toBe(201);
    expect(allAlive()).toBe(true);
  });

  it('survives the restart under a steady load of requests on every node', async () => {
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let stop = false;
    let n = 0;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const i = n++ % cluster.nodes.length;
        try {
          const a = n % 2 === 0 ? await register(url(i), `load-${n}`) : await createRoom(url(i));
          // Success (2xx: registered, or a new room) or refused for the outage; anything else is kept as is.
          const kind = a.status >= 200 && a.status < 300 && !taken(a) ? 200 : a.status;
          statuses.set(kind, (statuses.get(kind) ?? 0) + 1);
        } catch (err) {
          failures.push(`node ${i}: ${(err as Error).message}`);
        }
      }
    };
    const loops = [loop(), loop()];
    await eventually(() => (statuses.get(200) ?? 0) >= 10, 15_000, 'load before the outage');
    await lose();
    await eventually(() => (statuses.get(503) ?? 0) >= 10, 15_000, 'refusals during the outage');
    const before = statuses.get(200) ?? 0;
    await restore();
    await eventually(() => (statuses.get(200) ?? 0) >= before + 10, 30_000, 'successes after the restart');
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    // Only successes and "unavailable": no 500, no hang, no dropped connection.
    expect([...statuses.keys()].sort()).toEqual([200, 503]);
    expect(allAlive()).toBe(true);
  });

  it('drops malformed traffic on the cluster subjects without harm', async () => {
    // A stranger's junk on the bus must not break the nodes: they still serve afterwards.
    const { connect } = await import('@nats-io/transport-node');
    const nc = await connect({ servers: cluster.nats.url });
    try {
      for (const subject of [
        'chorus.presence.signal.claim.alice',
        'chorus.presence.signal.deliver.alice',
        'chorus.node.node-1.ping',
      ]) {
        nc.publish(subject, new Uint8Array([0xff, 0x00, 0x7b]));
        nc.publish(subject, '{"not":"what you expect"');
      }
      await nc.flush();
    } finally {
      await nc.close();
    }
    expect((await register(url(1), 'after-junk')).body).toEqual({ status: 'SUCCESS', message: '' });
    expect(taken(await register(url(2), 'after-junk'))).toBe(true);
    expect(allAlive()).toBe(true);
  });
});
