// bench/signal: N idle Signal connections held by one server, then P pairs forwarding
// messages in a closed loop. Reports connections held, server memory per connection,
// messages/s, p50/p99 latency and server CPU.
//
//   npm run bench:signal -- [--connections 5000] [--pairs 100] [--window 8] [--seconds 10]
//
// With --cluster: the same closed loop twice in one run, first on one node, then across
// two nodes (a nats-server -js started here, two Chorus processes with CLUSTER_NATS_URL):
// each pair's sender is connected to node A and its receiver to node B, so every hop
// crosses the bus. Reports forwarded messages per server CPU-second (summed over the
// Chorus processes, and with nats-server's too) and p50/p99 of one hop for both.
//
//   npm run bench:signal -- --cluster [--pairs 50] [--window 1] [--seconds 5]
import { parseArgs } from 'node:util';
import os from 'node:os';
import WebSocket from 'ws';
import { NatsServerProcess } from '../../test/fixtures/nats-server.js';
import {
  cpuSeconds,
  percentile,
  rssBytes,
  startBenchServer,
  type BenchServer,
} from '../lib/server-process.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string' },
    pairs: { type: 'string', default: '100' },
    window: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    cluster: { type: 'boolean', default: false },
  },
});
const CLUSTER = values.cluster;
// The cluster comparison needs no idle crowd: just the pairs.
const N = Number(values.connections ?? (CLUSTER ? 2 * Number(values.pairs) : 5000));
const PAIRS = Math.min(Number(values.pairs), Math.floor(N / 2));
const WINDOW = Number(values.window);
const SECONDS = Number(values.seconds);
const SERVER_ENV = { SIGNAL_RATE_LIMIT: '100000', SIGNAL_RATE_BURST: '100000' };
/** Cluster runs: Signal only, so two processes on one box do not fight over the WebRTC port. */
const SIGNAL_ONLY = { VOIP_ENABLED: 'no', BEEP_ENABLED: 'no', STREAM_ENABLED: 'no', BLUESKY_ENABLED: 'no' };

async function register(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name }),
  });
  if (!res.ok) throw new Error(`register ${name}: ${res.status}`);
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}

function open(url: string, cookie: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/connect`, {
      headers: { cookie },
      perMessageDeflate: false,
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function inBatches<T>(count: number, batch: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  for (let i = 0; i < count; i += batch) {
    const part = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => fn(i + j)));
    part.forEach((v, j) => (out[i + j] = v));
  }
  return out;
}

interface LoopResult {
  messagesPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
  /** CPU seconds of each measured process over the loop. */
  cpuSeconds: number[];
  elapsed: number;
  delivered: number;
}

/**
 * Closed loop: socket 2p keeps WINDOW messages in flight to socket 2p+1, which answers
 * each; latency is one forward hop (send -> partner receives, same clock).
 */
async function closedLoop(sockets: WebSocket[], pids: number[]): Promise<LoopResult> {
  const latencies: number[] = [];
  let delivered = 0;
  let running = true;
  const first = new Set<number>();
  for (let p = 0; p < PAIRS; p++) {
    const a = sockets[2 * p]!;
    const b = sockets[2 * p + 1]!;
    const onMessage = (self: WebSocket, peer: string) => (data: WebSocket.RawData) => {
      const msg = JSON.parse((data as Buffer).toString()) as { payload: number; type: string };
      if (msg.type === 't') {
        latencies.push(performance.now() - msg.payload);
        delivered++;
      } else first.add(p);
      if (running) self.send(`{"target":"${peer}","type":"t","payload":${performance.now()}}`);
    };
    a.on('message', onMessage(a, `u${2 * p + 1}`));
    b.on('message', onMessage(b, `u${2 * p}`));
  }
  // A probe per pair until it comes back: across nodes a fresh connection's bus
  // subscription reaches nats-server a moment after its socket opens.
  const deadline = Date.now() + 10_000;
  while (first.size < PAIRS && Date.now() < deadline) {
    for (let p = 0; p < PAIRS; p++)
      if (!first.has(p)) sockets[2 * p]!.send(`{"target":"u${2 * p + 1}","type":"probe","payload":0}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  if (first.size < PAIRS) throw new Error(`only ${first.size} of ${PAIRS} pairs reach each other`);
  running = false;
  await new Promise((r) => setTimeout(r, 500)); // let the probes' echoes drain
  running = true;
  for (let p = 0; p < PAIRS; p++)
    for (let w = 0; w < WINDOW; w++)
      sockets[2 * p]!.send(`{"target":"u${2 * p + 1}","type":"t","payload":${performance.now()}}`);
  await new Promise((r) => setTimeout(r, 500)); // warm-up
  const cpu0 = pids.map(cpuSeconds);
  const start = performance.now();
  latencies.length = 0;
  delivered = 0;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const elapsed = (performance.now() - start) / 1000;
  const count = delivered;
  const lat = latencies.slice().sort((x, y) => x - y);
  const cpu = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!);
  running = false;
  return {
    messagesPerSecond: Math.round(count / elapsed),
    latencyMsP50: Number(percentile(lat, 50).toFixed(3)),
    latencyMsP99: Number(percentile(lat, 99).toFixed(3)),
    cpuSeconds: cpu.map((c) => Number(c.toFixed(2))),
    elapsed,
    delivered: count,
  };
}

const perCpuSecond = (r: LoopResult, cpu: number): number => Math.round(r.delivered / cpu);
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;

/** One node: N held connections (memory per connection), then the loop on the first pairs. */
async function oneNode(env: Record<string, string>): Promise<Record<string, unknown>> {
  const server = await startBenchServer({ ...SERVER_ENV, ...env });
  try {
    const cookies = await inBatches(N, 100, (i) => register(server.url, `u${i}`));
    const rssBefore = rssBytes(server.pid);
    const t0 = performance.now();
    const sockets = await inBatches(N, 200, (i) => open(server.url, cookies[i]!));
    const connectSeconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2000)); // let the server settle
    const rssAfter = rssBytes(server.pid);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const held = Number(/chorus_websockets_open\{surface="signal"\} (\d+)/.exec(metrics)?.[1] ?? NaN);
    const r = await closedLoop(sockets, [server.pid]);
    for (const s of sockets) s.terminate();
    return {
      connectionsRequested: N,
      connectionsHeld: held,
      connectSeconds: Number(connectSeconds.toFixed(2)),
      serverRssMiBBefore: Number((rssBefore / 2 ** 20).toFixed(1)),
      serverRssMiBAfter: Number((rssAfter / 2 ** 20).toFixed(1)),
      bytesPerConnection: Math.round((rssAfter - rssBefore) / N),
      messagesPerSecond: r.messagesPerSecond,
      messagesPerServerCpuSecond: perCpuSecond(r, sum(r.cpuSeconds)),
      latencyMsP50: r.latencyMsP50,
      latencyMsP99: r.latencyMsP99,
      serverCpuPercent: Math.round((sum(r.cpuSeconds) / r.elapsed) * 100),
    };
  } finally {
    await server.stop();
  }
}

/** Two nodes on one nats-server: senders (even sockets) on A, receivers (odd) on B. */
async function twoNodes(): Promise<Record<string, unknown>> {
  const nats = new NatsServerProcess({ jetstream: true });
  await nats.start();
  const servers: BenchServer[] = [];
  try {
    for (const id of ['bench-a', 'bench-b']) {
      servers.push(
        await startBenchServer({
          ...SERVER_ENV,
          ...SIGNAL_ONLY,
          CLUSTER_NATS_URL: nats.url,
          CLUSTER_NODE_ID: id,
        }),
      );
    }
    const [a, b] = servers as [BenchServer, BenchServer];
    const cookies = await inBatches(N, 100, (i) => register(i % 2 === 0 ? a.url : b.url, `u${i}`));
    const sockets = await inBatches(N, 200, (i) => open(i % 2 === 0 ? a.url : b.url, cookies[i]!));
    const r = await closedLoop(sockets, [a.pid, b.pid, nats.pid]);
    for (const s of sockets) s.terminate();
    const chorusCpu = r.cpuSeconds[0]! + r.cpuSeconds[1]!;
    return {
      messagesPerSecond: r.messagesPerSecond,
      messagesPerChorusCpuSecond: perCpuSecond(r, chorusCpu),
      messagesPerCpuSecondWithNats: perCpuSecond(r, sum(r.cpuSeconds)),
      crossNodeHopMsP50: r.latencyMsP50,
      crossNodeHopMsP99: r.latencyMsP99,
      cpuPercent: {
        nodeA: Math.round((r.cpuSeconds[0]! / r.elapsed) * 100),
        nodeB: Math.round((r.cpuSeconds[1]! / r.elapsed) * 100),
        natsServer: Math.round((r.cpuSeconds[2]! / r.elapsed) * 100),
      },
    };
  } finally {
    for (const s of servers) await s.stop();
    await nats.dispose();
  }
}

const head = { machine, node: process.version, pairs: PAIRS, window: WINDOW, seconds: SECONDS };
if (!CLUSTER) {
  console.log(JSON.stringify({ ...head, ...(await oneNode({})) }, null, 2));
} else {
  const single = await oneNode(SIGNAL_ONLY);
  const cluster = await twoNodes();
  console.log(JSON.stringify({ ...head, oneNode: single, twoNodes: cluster }, null, 2));
}
