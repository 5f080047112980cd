// bench/signal: N idle Signal connections held by one server, then P pairs forwarding
// messages in a closed loop. Reports connections held, server memory per connection,
// messages/s, p50/p99 latency and server CPU.
//
//   npm run bench:signal -- [--connections 5000] [--pairs 100] [--window 8] [--seconds 10]
import { parseArgs } from 'node:util';
import os from 'node:os';
import WebSocket from 'ws';
import { cpuSeconds, percentile, rssBytes, startBenchServer } from '../lib/server-process.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    pairs: { type: 'string', default: '100' },
    window: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
  },
});
const N = Number(values.connections);
const PAIRS = Math.min(Number(values.pairs), Math.floor(N / 2));
const WINDOW = Number(values.window);
const SECONDS = Number(values.seconds);

async function register(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name }),
  });
  if (!res.ok) throw new Error(`register ${name}: ${res.status}`);
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}

function open(wsUrl: string, cookie: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsUrl}/v1/connect`, { headers: { cookie }, perMessageDeflate: false });
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

const server = await startBenchServer({ SIGNAL_RATE_LIMIT: '100000', SIGNAL_RATE_BURST: '100000' });
const wsUrl = server.url.replace('http', 'ws');
try {
  const cookies = await inBatches(N, 100, (i) => register(server.url, `u${i}`));
  if (global.gc) global.gc();
  const rssBefore = rssBytes(server.pid);
  const t0 = performance.now();
  const sockets = await inBatches(N, 200, (i) => open(wsUrl, cookies[i]!));
  const connectSeconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 2000)); // let the server settle
  const rssAfter = rssBytes(server.pid);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const held = Number(/chorus_websockets_open\{surface="signal"\} (\d+)/.exec(metrics)?.[1] ?? NaN);

  // Closed loop: each of the first PAIRS*2 sockets keeps WINDOW messages in flight to its
  // partner, which echoes them back; latency is one forward hop (send -> partner receives).
  const latencies: number[] = [];
  let delivered = 0;
  let running = true;
  for (let p = 0; p < PAIRS; p++) {
    const a = sockets[2 * p]!;
    const b = sockets[2 * p + 1]!;
    const nameA = `u${2 * p}`;
    const nameB = `u${2 * p + 1}`;
    const onMessage = (self: WebSocket, peer: string) => (data: WebSocket.RawData) => {
      const msg = JSON.parse((data as Buffer).toString()) as { payload: number };
      latencies.push(performance.now() - msg.payload);
      delivered++;
      if (running) self.send(`{"target":"${peer}","type":"t","payload":${performance.now()}}`);
    };
    a.on('message', onMessage(a, nameB));
    b.on('message', onMessage(b, nameA));
    for (let w = 0; w < WINDOW; w++)
      a.send(`{"target":"${nameB}","type":"t","payload":${performance.now()}}`);
  }
  const cpu0 = cpuSeconds(server.pid);
  const start = performance.now();
  latencies.length = 0;
  delivered = 0;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const elapsed = (performance.now() - start) / 1000;
  const count = delivered;
  const lat = latencies.slice().sort((x, y) => x - y);
  const cpu = cpuSeconds(server.pid) - cpu0;
  running = false;

  const result = {
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    connectionsRequested: N,
    connectionsHeld: held,
    connectSeconds: Number(connectSeconds.toFixed(2)),
    serverRssMiBBefore: Number((rssBefore / 2 ** 20).toFixed(1)),
    serverRssMiBAfter: Number((rssAfter / 2 ** 20).toFixed(1)),
    bytesPerConnection: Math.round((rssAfter - rssBefore) / N),
    pairs: PAIRS,
    window: WINDOW,
    messagesPerSecond: Math.round(count / elapsed),
    latencyMsP50: Number(percentile(lat, 50).toFixed(2)),
    latencyMsP99: Number(percentile(lat, 99).toFixed(2)),
    serverCpuPercent: Math.round((cpu / elapsed) * 100),
  };
  console.log(JSON.stringify(result, null, 2));
  for (const s of sockets) s.terminate();
} finally {
  await server.stop();
}
