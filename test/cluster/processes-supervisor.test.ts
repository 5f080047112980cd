import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChorusToExit } from '../fixtures/chorus-process.js';
import { isRunning, startProcesses, type ChorusProcesses } from '../fixtures/chorus-processes.js';
import { freePort } from '../../bench/lib/server-process.js';
import { selfSignedCert } from '../fixtures/self-signed.js';
import { hasTool } from '../fixtures/system-tools.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

// `chorus serve --processes 3` as a real process: a supervisor, three workers sharing one
// HTTP port (Node's cluster module), each its own cluster node, over a nats-server the
// supervisor starts itself.

const ADMIN = 'processes-admin-token-0123456789';
const run = hasTool('nats-server', 'nats-server');

interface NodeView {
  id: string;
  instance: string;
  webrtc?: { udpPort: number };
  load?: { connections: number };
}

let procs: ChorusProcesses;

async function clusterNodes(): Promise<NodeView[]> {
  const res = await fetch(`${procs.url}/cluster/nodes`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (!res.ok) return [];
  return ((await res.json()) as { nodes: NodeView[] }).nodes;
}

/** Waits until the cluster (as whichever worker answers sees it) satisfies `check`. */
async function nodesUntil(check: (nodes: NodeView[]) => boolean, what: string): Promise<NodeView[]> {
  let last: NodeView[] = [];
  await eventually(
    async () => {
      last = await clusterNodes();
      return check(last);
    },
    30_000,
    what,
  );
  return last;
}

/**
 * Which worker answers `GET /cluster/nodes` (its `self`), over a new TCP connection each
 * time (`agent: false`), as separate clients would arrive.
 */
function answeringNode(url: string, ca?: Buffer): Promise<string> {
  const get = url.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(
      `${url}/cluster/nodes`,
      { agent: false, headers: { authorization: `Bearer ${ADMIN}` }, ...(ca ? { ca } : {}) },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          try {
            resolve((JSON.parse(body) as { self: string }).self);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('error', reject);
  });
}

const ids = (count: number): string[] => Array.from({ length: count }, (_, i) => `${procs.machineId}-${i}`);

describe.runIf(run)('chorus serve --processes 3', () => {
  const sockets: TestSocket[] = [];
  const certDir = mkdtempSync(join(tmpdir(), 'chorus-processes-tls-'));
  const tls = selfSignedCert(certDir);

  beforeAll(async () => {
    procs = await startProcesses(3, {
      ADMIN_TOKEN: ADMIN,
      SIGNAL_REGISTER_RATE_PER_MINUTE: '0',
      SSL_CERT: tls.cert,
      SSL_KEY: tls.key,
      SSL_PORT: '0',
    });
  }, 200_000);

  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await procs?.stop();
    rmSync(certDir, { recursive: true, force: true });
  }, 30_000);

  it('is ready, and its three workers are three nodes with their own ids and WebRTC UDP ports', async () => {
    await eventually(
      async () => {
        const res = await fetch(`${procs.url}/readyz`);
        if (res.status !== 200) return false;
        const body = (await res.json()) as { details?: { cluster?: { nodes: number } } };
        return body.details?.cluster?.nodes === 3;
      },
      30_000,
      '/readyz ready with 3 nodes',
    );
    const nodes = await nodesUntil((n) => n.length === 3, '3 nodes listed');
    expect(nodes.map((n) => n.id)).toEqual(ids(3));
    const ports = nodes.map((n) => n.webrtc?.udpPort);
    expect(ports).toEqual([procs.udpBase, procs.udpBase + 1, procs.udpBase + 2]);
    // Three distinct worker processes, none of them the supervisor.
    const pids = [0, 1, 2].map((i) => procs.workerPid(i));
    expect(new Set(pids).size).toBe(3);
    expect(pids).not.toContain(procs.supervisor.child.pid);
    // The workers' log lines, on the supervisor's stdout, say which worker wrote them.
    for (const id of ids(3)) expect(procs.supervisor.stdout()).toContain(`"worker":"${id}"`);
  }, 60_000);

  it('hands new HTTP and HTTPS connections to every worker, on one port each', async () => {
    const https = procs.supervisorLines().find((l) => l.msg === 'chorus processes listening')?.https;
    expect(typeof https).toBe('string');
    const ca = readFileSync(tls.cert);
    for (const [url, key] of [
      [procs.url, undefined],
      [https as string, ca],
    ] as const) {
      const seen = new Set<string>();
      await eventually(
        async () => {
          seen.add(await answeringNode(url, key));
          return seen.size === 3;
        },
        30_000,
        `every worker answering on ${url}`,
      );
      expect([...seen].sort()).toEqual(ids(3));
    }
  }, 60_000);

  it('spreads connections over the workers, and Signal messages cross between them', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `spread-${i}-${Date.now()}`);
    for (const name of names) {
      const res = await fetch(`${procs.url}/v1/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: name }),
      });
      expect(((await res.json()) as { status: string }).status).toBe('SUCCESS');
      const cookie = res.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      sockets.push(await TestSocket.open(`${procs.url.replace(/^http/, 'ws')}/v1/connect`, { cookie }));
    }
    // Each node counts its own sockets in its heartbeat: the six landed on more than one worker.
    const nodes = await nodesUntil(
      (n) => n.reduce((sum, x) => sum + (x.load?.connections ?? 0), 0) === 6,
      'the six sockets counted',
    );
    const holding = nodes.filter((n) => (n.load?.connections ?? 0) > 0);
    expect(holding.length).toBeGreaterThan(1);
    // A ring of messages: with sockets on several workers, some hops cross workers.
    for (let i = 0; i < names.length; i++) {
      const from = sockets[i]!;
      const to = sockets[(i + 1) % names.length]!;
      const target = names[(i + 1) % names.length]!;
      let n = 0;
      await eventually(
        async () => {
          const probe = `ring-${i}-${n++}`;
          from.send({ target, type: 'ring', payload: probe });
          try {
            await to.next((m) => m.includes(probe), 500);
            return true;
          } catch {
            return false;
          }
        },
        15_000,
        `${names[i]} -> ${target}`,
      );
    }
  }, 90_000);

  it('restarts a worker killed with SIGKILL; it rejoins with its node id', async () => {
    const victim = 1;
    const before = await nodesUntil((n) => n.length === 3, '3 nodes');
    const oldInstance = before.find((n) => n.id === ids(3)[victim])!.instance;
    const oldPid = procs.workerPid(victim)!;
    process.kill(oldPid, 'SIGKILL');
    await eventually(() => !isRunning(oldPid), 10_000, 'the worker gone');
    await eventually(
      () => procs.supervisorLines().some((l) => l.msg === 'worker died; restarting' && l.pid === oldPid),
      10_000,
      'the supervisor saying it restarts the worker',
    );
    await eventually(
      () => procs.workerPid(victim) !== oldPid && isRunning(procs.workerPid(victim)!),
      30_000,
      'a new worker process',
    );
    const newPid = procs.workerPid(victim);
    await eventually(
      () => procs.supervisorLines().some((l) => l.msg === 'worker listening' && l.pid === newPid),
      60_000,
      'the new worker listening',
    );
    const after = await nodesUntil(
      (n) => n.length === 3 && n.some((x) => x.id === ids(3)[victim] && x.instance !== oldInstance),
      'the restarted worker back in the cluster',
    );
    expect(after.map((n) => n.id)).toEqual(ids(3));
    // The others were left alone.
    for (const i of [0, 2]) {
      expect(after.find((n) => n.id === ids(3)[i])!.instance).toBe(
        before.find((n) => n.id === ids(3)[i])!.instance,
      );
    }
  }, 90_000);

  it('starts the nats-server again on the same port when it dies; the workers reconnect', async () => {
    const oldPid = procs.natsPid()!;
    const oldUrl = procs.supervisorLines().findLast((l) => l.msg === 'nats-server started')?.url;
    process.kill(oldPid, 'SIGKILL');
    await eventually(
      () => procs.supervisorLines().some((l) => l.msg === 'nats-server died; starting it again'),
      10_000,
      'the supervisor noticing',
    );
    await eventually(() => procs.natsPid() !== oldPid, 30_000, 'a new nats-server');
    expect(procs.supervisorLines().findLast((l) => l.msg === 'nats-server started')?.url).toBe(oldUrl);
    await eventually(
      async () => {
        const res = await fetch(`${procs.url}/readyz`);
        const body = (await res.json()) as { details?: { cluster?: { nodes: number } } };
        return res.status === 200 && body.details?.cluster?.nodes === 3;
      },
      60_000,
      'ready again with 3 nodes',
    );
  }, 90_000);

  it('SIGTERM: every worker drains and exits, then nats-server; exit 0, no process left', async () => {
    const pids = [...procs.allWorkerPids(), procs.natsPid()!];
    expect(pids.length).toBeGreaterThanOrEqual(4);
    procs.supervisor.kill('SIGTERM');
    // The workers get it too, as when a whole process group or a systemd unit is signalled:
    // the supervisor's forwarded SIGTERM is then their second, which must not cut the drain.
    for (const i of [0, 1, 2]) process.kill(procs.workerPid(i)!, 'SIGTERM');
    const code = await procs.supervisor.exited;
    const said = procs
      .supervisorLines()
      .map((l) => JSON.stringify(l))
      .join('\n');
    expect(code, said).toBe(0);
    for (const pid of pids) expect(isRunning(pid), `pid ${pid}`).toBe(false);
    const stopped = procs.supervisorLines().filter((l) => l.msg === 'worker exited');
    expect(stopped.map((l) => l.code)).toEqual([0, 0, 0]);
  }, 60_000);
});

describe.runIf(run)('chorus serve --processes: a supervisor killed with SIGKILL', () => {
  let first: ChorusProcesses | undefined;
  let second: ChorusProcesses | undefined;
  afterAll(async () => {
    await first?.stop();
    await second?.stop();
  }, 30_000);

  it('takes its workers with it; the next start stops the nats-server it left and starts on the same DATA_DIR', async () => {
    first = await startProcesses(2);
    const workers = [first.workerPid(0)!, first.workerPid(1)!];
    const leftNats = first.natsPid()!;
    first.supervisor.kill('SIGKILL');
    await first.supervisor.exited;
    // Cluster workers exit when their channel to the supervisor closes.
    for (const pid of workers) await eventually(() => !isRunning(pid), 20_000, `worker ${pid} gone`);
    // The nats-server cannot be told (SIGKILL): it is still there, on the store.
    expect(isRunning(leftNats)).toBe(true);

    second = await startProcesses(2, {}, { dataDir: first.dataDir });
    expect(isRunning(leftNats)).toBe(false);
    const stopped = second
      .supervisorLines()
      .find((l) => l.msg === 'stopping the nats-server that a killed supervisor left on this DATA_DIR');
    expect(stopped?.pid).toBe(leftNats);
    expect(second.natsPid()).not.toBe(leftNats);
    expect(second.machineId).toBe(first.machineId);
    const url = second.url;
    await eventually(async () => (await fetch(`${url}/readyz`)).status === 200, 30_000, 'ready again');
  }, 360_000);
});

describe.runIf(run)('chorus serve --processes: start-up failures', () => {
  const dirs: string[] = [];
  const dataDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-processes-fail-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('without CLUSTER_NATS_URL and without nats-server on PATH: one line, exit 2', async () => {
    const { code, output } = await runChorusToExit(
      { PATH: '/nonexistent', DATA_DIR: dataDir(), HTTP_PORT: '0' },
      ['serve', '--processes', '3'],
      { timeoutMs: 50_000 },
    );
    expect(code).toBe(2);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^chorus: --processes 3 needs NATS: install nats-server .* or set CLUSTER_NATS_URL$/,
    );
  }, 60_000);

  it('a worker that fails at start (NATS out of reach) stops the supervisor with exit 2', async () => {
    const closed = await freePort();
    const { code, output } = await runChorusToExit(
      {
        CHORUS_PROCESSES: '2',
        CLUSTER_NATS_URL: `nats://127.0.0.1:${closed}`,
        CLUSTER_CONNECT_TIMEOUT_SECONDS: '1',
        DATA_DIR: dataDir(),
        BIND_ADDRESS: '127.0.0.1',
        HTTP_PORT: '0',
      },
      ['serve'],
      { timeoutMs: 110_000 },
    );
    expect(code, output).toBe(2);
    expect(output).toContain('worker failed at start');
    expect(output).toMatch(/chorus: .*NATS/);
  }, 120_000);
});
