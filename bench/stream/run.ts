// bench/stream: one publisher at a fixed bitrate and N receivers in other processes.
// Reports delivered Mbit/s, server CPU and RSS, and chunks dropped for slow receivers.
//
//   npm run bench:stream -- [--receivers 10,100,500,1000] [--mbps 3] [--chunk 16384] [--seconds 10] [--workers 2]
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { cpuSeconds, rssBytes, startBenchServer } from '../lib/server-process.js';

const { values } = parseArgs({
  options: {
    receivers: { type: 'string', default: '10,100,500,1000' },
    mbps: { type: 'string', default: '3' },
    chunk: { type: 'string', default: '16384' },
    seconds: { type: 'string', default: '10' },
    workers: { type: 'string', default: '2' },
  },
});
const SIZES = values.receivers.split(',').map(Number);
const MBPS = Number(values.mbps);
const CHUNK = Number(values.chunk);
const SECONDS = Number(values.seconds);
const WORKERS = Number(values.workers);

interface Report {
  type: string;
  bytes: number;
  open: number;
  closed: number;
}

function ask(w: ChildProcess, type: string): Promise<Report> {
  return new Promise((resolve) => {
    const on = (m: Report): void => {
      if (m.type === type || (type === 'report' && m.type === 'report')) {
        w.off('message', on);
        resolve(m);
      }
    };
    w.on('message', on);
    if (type === 'report') w.send({ type });
  });
}

async function runOnce(n: number): Promise<Record<string, unknown>> {
  const server = await startBenchServer({
    CONCURRENT_LIMIT_WHITELIST: '127.0.0.0/8',
    GOP_CACHE_SIZE_MB: '16',
  });
  const { hostname, port } = new URL(server.url);
  const channel = `bench${n}`;
  try {
    const pub = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/${channel}/k/publish`, {
        perMessageDeflate: false,
      });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
    const workers: ChildProcess[] = [];
    const per = Math.ceil(n / WORKERS);
    for (let i = 0, left = n; i < WORKERS && left > 0; i++, left -= per) {
      const w = fork(
        new URL('./receivers.ts', import.meta.url).pathname,
        [hostname, port, `/${channel}/k/receive`, String(Math.min(per, left))],
        {
          execArgv: ['--import', 'tsx'],
        },
      );
      workers.push(w);
    }
    await Promise.all(workers.map((w) => ask(w, 'ready')));

    // Publish at the target bitrate: chunks on a fixed schedule, each stamped with its number.
    const interval = ((CHUNK * 8) / (MBPS * 1e6)) * 1000;
    const base = Buffer.alloc(CHUNK, 0x5a);
    let sent = 0;
    const startReports = await Promise.all(workers.map((w) => ask(w, 'report')));
    const cpu0 = cpuSeconds(server.pid);
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.floor((performance.now() - t0) / interval);
        while (sent < due) {
          const c = Buffer.from(base);
          c.writeUInt32BE(sent, 0);
          pub.send(c, { binary: true });
          sent++;
        }
        if (performance.now() - t0 >= SECONDS * 1000) resolve();
        else setTimeout(tick, Math.max(1, interval / 2));
      };
      tick();
    });
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    await new Promise((r) => setTimeout(r, 300)); // let the last chunks arrive
    const endReports = await Promise.all(workers.map((w) => ask(w, 'report')));
    const rss = rssBytes(server.pid);
    const stats = (await (await fetch(`${server.url}/stream-stats/${channel}`)).json()) as Record<
      string,
      number
    >;
    const delivered = endReports.reduce((s, r, i) => s + r.bytes - startReports[i]!.bytes, 0);
    const stillOpen = endReports.reduce((s, r) => s + r.open - r.closed, 0);
    for (const w of workers) w.send({ type: 'exit' });
    pub.close();
    return {
      receivers: n,
      stillConnected: stillOpen,
      publishedMbps: Number(((sent * CHUNK * 8) / elapsed / 1e6).toFixed(2)),
      deliveredMbps: Number(((delivered * 8) / elapsed / 1e6).toFixed(1)),
      perReceiverMbps: Number(((delivered * 8) / elapsed / 1e6 / n).toFixed(2)),
      serverCpuPercent: Math.round((cpu / elapsed) * 100),
      serverRssMiB: Number((rss / 2 ** 20).toFixed(1)),
      droppedChunks: stats.dropped,
      chunksPublished: sent,
    };
  } finally {
    await server.stop();
  }
}

console.log(
  JSON.stringify({
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    mbps: MBPS,
    chunkBytes: CHUNK,
    seconds: SECONDS,
  }),
);
for (const n of SIZES) console.log(JSON.stringify(await runOnce(n)));
