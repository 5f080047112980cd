// bench/stream: one publisher at a fixed bitrate and N receivers in other processes.
// Reports delivered Mbit/s, server CPU and RSS, and chunks dropped for slow receivers.
// With --probe-ms N, a new receiver connects every N ms while the stream runs: the time
// its WebSocket handshake takes to be answered, and the server's longest event-loop
// delay over the window (prom-client's nodejs_eventloop_lag_max_seconds, reset by a
// scrape just before it) show whether fan-out leaves room for new connections and timers.
//
// With --cluster (issue #15.8): each size runs on one process, then spread over two
// (publisher on A, receivers split between A and B through a nats-server started here);
// Chorus CPU per delivered Gbit for both and their ratio, and the delay crossing to B adds.
//
//   npm run bench:stream -- [--receivers 10,100,500,1000] [--mbps 3] [--chunk 16384] [--seconds 10] [--workers 2]
//                           [--probe-ms 500]
//   npm run bench:stream -- --cluster [--receivers 20,200] [--mbps 3] [--seconds 10]
import os from 'node:os';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { cpuSeconds, percentile, rssBytes, startBenchServer } from '../lib/server-process.js';
import { ask, openSocket, publishAtRate, receivedBytes, startReceivers, stopReceivers } from './load.js';
import { spreadComparison } from './spread.js';

const { values } = parseArgs({
  options: {
    receivers: { type: 'string' },
    mbps: { type: 'string', default: '3' },
    chunk: { type: 'string', default: '16384' },
    seconds: { type: 'string', default: '10' },
    workers: { type: 'string', default: '2' },
    'probe-ms': { type: 'string', default: '0' },
    cluster: { type: 'boolean', default: false },
  },
});
const CLUSTER = values.cluster;
const SIZES = (values.receivers ?? (CLUSTER ? '20,200' : '10,100,500,1000')).split(',').map(Number);
const MBPS = Number(values.mbps);
const CHUNK = Number(values.chunk);
const SECONDS = Number(values.seconds);
const WORKERS = Number(values.workers);
const PROBE_MS = Number(values['probe-ms']);

/** Time from opening a receiver's connection to the server's 101, in ms (Infinity on refusal). */
function handshakeMs(url: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('upgrade', () => resolve(performance.now() - t0));
    ws.once('open', () => ws.terminate());
    ws.once('error', () => resolve(Infinity));
  });
}

/** The server's longest event-loop delay since the last scrape, in ms. */
async function loopLagMaxMs(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^chorus_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
  return m ? Number(m[1]) * 1000 : NaN;
}

async function runOnce(n: number): Promise<Record<string, unknown>> {
  const server = await startBenchServer({
    CONCURRENT_LIMIT_WHITELIST: '127.0.0.0/8',
    GOP_CACHE_SIZE_MB: '16',
  });
  const channel = `bench${n}`;
  try {
    const pub = await openSocket(`${server.url.replace('http', 'ws')}/${channel}/k/publish`);
    const workers = await startReceivers(server.url, `/${channel}/k/receive`, n, WORKERS);

    // Publish at the target bitrate: chunks on a fixed schedule, each stamped with its number.
    const bytes0 = await receivedBytes(workers);
    const probeUrl = `${server.url.replace('http', 'ws')}/${channel}/k/receive`;
    const handshakes: Array<Promise<number>> = [];
    if (PROBE_MS > 0) await loopLagMaxMs(server.url);
    const statsUrl = `${server.url}/stream-stats/${channel}`;
    const out0 = ((await (await fetch(statsUrl)).json()) as { bytesOut: number }).bytesOut;
    const cpu0 = cpuSeconds(server.pid);
    let nextProbe = PROBE_MS;
    const { sent, elapsed } = await publishAtRate(pub, {
      mbps: MBPS,
      chunk: CHUNK,
      seconds: SECONDS,
      onTick: (now) => {
        if (PROBE_MS > 0 && now >= nextProbe) {
          nextProbe += PROBE_MS;
          handshakes.push(handshakeMs(probeUrl));
        }
      },
    });
    const cpu = cpuSeconds(server.pid) - cpu0;
    const lagMaxMs = PROBE_MS > 0 ? await loopLagMaxMs(server.url) : NaN;
    const out1 = ((await (await fetch(statsUrl)).json()) as { bytesOut: number }).bytesOut;
    const probes = (await Promise.all(handshakes)).sort((a, b) => a - b);
    await new Promise((r) => setTimeout(r, 300)); // let the last chunks arrive
    const delivered = (await receivedBytes(workers)) - bytes0;
    const endReports = await Promise.all(workers.map((w) => ask(w, 'report')));
    const rss = rssBytes(server.pid);
    const stats = (await (await fetch(`${server.url}/stream-stats/${channel}`)).json()) as Record<
      string,
      number
    >;
    const stillOpen = endReports.reduce((s, r) => s + r.open - r.closed, 0);
    stopReceivers(workers);
    pub.close();
    return {
      receivers: n,
      stillConnected: stillOpen,
      publishedMbps: Number(((sent * CHUNK * 8) / elapsed / 1e6).toFixed(2)),
      deliveredMbps: Number(((delivered * 8) / elapsed / 1e6).toFixed(1)),
      // What the server handed to its sockets in the window (the receivers may still be reading it).
      serverSentMbps: Number((((out1 - out0) * 8) / elapsed / 1e6).toFixed(1)),
      perReceiverMbps: Number(((delivered * 8) / elapsed / 1e6 / n).toFixed(2)),
      serverCpuPercent: Math.round((cpu / elapsed) * 100),
      serverCpuSecondsPerGbit: Number((cpu / ((delivered * 8) / 1e9)).toFixed(3)),
      serverRssMiB: Number((rss / 2 ** 20).toFixed(1)),
      droppedChunks: stats.dropped,
      chunksPublished: sent,
      ...(PROBE_MS > 0
        ? {
            probes: probes.length,
            handshakeMedianMs: Math.round(percentile(probes, 50)),
            handshakeMaxMs: Math.round(probes[probes.length - 1] ?? NaN),
            eventLoopDelayMaxMs: Math.round(lagMaxMs),
          }
        : {}),
    };
  } finally {
    await server.stop();
  }
}

console.log(
  JSON.stringify({
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(1))),
    mbps: MBPS,
    chunkBytes: CHUNK,
    seconds: SECONDS,
  }),
);
for (const n of SIZES) {
  const result = CLUSTER
    ? await spreadComparison(n, { mbps: MBPS, chunk: CHUNK, seconds: SECONDS, workers: WORKERS })
    : await runOnce(n);
  console.log(JSON.stringify(result, null, CLUSTER ? 2 : undefined));
}
