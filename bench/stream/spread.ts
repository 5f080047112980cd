// bench:stream --cluster: one channel on one process, then the same channel spread over
// two (publisher on A, receivers split between A and B over a nats-server started here),
// in the same run, so the figures compare on the same (shared) machine at the same time.
import { oneNodeThenTwo } from '../lib/one-node-then-two.js';
import { cpuSeconds, percentile, type BenchServer } from '../lib/server-process.js';
import {
  latencyProbe,
  openSocket,
  publishAtRate,
  receivedBytes,
  startReceivers,
  stopReceivers,
} from './load.js';

export interface SpreadOptions {
  mbps: number;
  chunk: number;
  seconds: number;
  workers: number;
}

/** The idle window measured before the publishing one. */
const IDLE_MS = 5000;
const SERVER_ENV = { CONCURRENT_LIMIT_WHITELIST: '127.0.0.0/8', GOP_CACHE_SIZE_MB: '16' };

interface Layout {
  publishOn: BenchServer;
  /** Where the receivers connect, and how many on each. */
  groups: Array<{ server: BenchServer; count: number }>;
  /** Processes whose CPU counts as Chorus's. */
  chorus: number[];
  natsPid?: number;
}

interface Measured {
  deliveredMbps: number;
  chorusCpuSecondsPerGbit: number;
  /** The same less what the processes use idle (their CPU with nothing published). */
  streamCpuSecondsPerGbit: number;
  chorusCpuPercent: number[];
  idleCpuPercent: number[];
  natsCpuPercent?: number;
  cpuSecondsPerGbitWithNats?: number;
  /** Chunk delay at a receiver on each server (from the publisher's send), ms. */
  latencyMs: Array<{ p50: number; p99: number }>;
}

async function measure(layout: Layout, channel: string, opts: SpreadOptions): Promise<Measured> {
  const ws = (s: BenchServer, kind: string): string => `${s.url.replace('http', 'ws')}/${channel}/k/${kind}`;
  const pub = await openSocket(ws(layout.publishOn, 'publish'));
  const workers = (
    await Promise.all(
      layout.groups.map((g) => startReceivers(g.server.url, `/${channel}/k/receive`, g.count, opts.workers)),
    )
  ).flat();
  const probes = await Promise.all(layout.groups.map((g) => latencyProbe(ws(g.server, 'receive'))));
  try {
    // A second of warm-up: every node follows the channel before the window opens.
    await publishAtRate(pub, { ...opts, seconds: 1 });
    await new Promise((r) => setTimeout(r, 300));
    for (const p of probes) p.delaysMs.length = 0;
    const pids = [...layout.chorus, ...(layout.natsPid ? [layout.natsPid] : [])];
    // What the processes use with nothing published (timers, heartbeats, membership): a
    // second process costs this anyway; subtracted below for the stream's own cost.
    const idle0 = pids.map(cpuSeconds);
    const idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleRate = pids.map((p, i) => (cpuSeconds(p) - idle0[i]!) / ((performance.now() - idleT0) / 1000));
    const cpu0 = pids.map(cpuSeconds);
    const bytes0 = await receivedBytes(workers);
    const { elapsed } = await publishAtRate(pub, opts);
    await new Promise((r) => setTimeout(r, 300)); // the last chunks arrive
    const cpu = pids.map((p, i) => cpuSeconds(p) - cpu0[i]!);
    const gbit = ((await receivedBytes(workers)) - bytes0) * 8 / 1e9; // prettier-ignore
    const chorusCpu = cpu.slice(0, layout.chorus.length).reduce((a, b) => a + b, 0);
    const chorusIdle = idleRate.slice(0, layout.chorus.length).reduce((a, b) => a + b, 0) * elapsed;
    const natsCpu = layout.natsPid ? cpu[cpu.length - 1]! : undefined;
    return {
      deliveredMbps: Number(((gbit * 1000) / elapsed).toFixed(1)),
      chorusCpuSecondsPerGbit: Number((chorusCpu / gbit).toFixed(3)),
      streamCpuSecondsPerGbit: Number((Math.max(0, chorusCpu - chorusIdle) / gbit).toFixed(3)),
      idleCpuPercent: idleRate.map((r) => Math.round(r * 100)),
      chorusCpuPercent: cpu.slice(0, layout.chorus.length).map((c) => Math.round((c / elapsed) * 100)),
      ...(natsCpu !== undefined
        ? {
            natsCpuPercent: Math.round((natsCpu / elapsed) * 100),
            cpuSecondsPerGbitWithNats: Number(((chorusCpu + natsCpu) / gbit).toFixed(3)),
          }
        : {}),
      latencyMs: probes.map((p) => {
        const d = p.delaysMs.sort((a, b) => a - b);
        return { p50: Number(percentile(d, 50).toFixed(2)), p99: Number(percentile(d, 99).toFixed(2)) };
      }),
    };
  } finally {
    for (const p of probes) p.close();
    stopReceivers(workers);
    pub.close();
  }
}

/** The same channel and receivers on one process, then over two. */
export async function spreadComparison(
  receivers: number,
  opts: SpreadOptions,
): Promise<Record<string, unknown>> {
  const half = Math.floor(receivers / 2);
  const { single, spread } = await oneNodeThenTwo(
    SERVER_ENV,
    (one) =>
      measure(
        { publishOn: one, groups: [{ server: one, count: receivers }], chorus: [one.pid] },
        `one${receivers}`,
        opts,
      ),
    ({ a, b, natsPid }) =>
      measure(
        {
          publishOn: a,
          groups: [
            { server: a, count: receivers - half },
            { server: b, count: half },
          ],
          chorus: [a.pid, b.pid],
          natsPid,
        },
        `two${receivers}`,
        opts,
      ),
  );
  return {
    receivers,
    oneProcess: single,
    twoProcesses: spread,
    /** Chorus CPU per delivered Gbit, two processes against one (1.0 = the relay costs nothing). */
    cpuPerGbitRatio: Number((spread.chorusCpuSecondsPerGbit / single.chorusCpuSecondsPerGbit).toFixed(3)),
    /** The same without the processes' idle CPU: what the relay adds to the stream's own cost. */
    streamCpuPerGbitRatio: Number(
      (spread.streamCpuSecondsPerGbit / single.streamCpuSecondsPerGbit).toFixed(3),
    ),
    cpuPerGbitRatioWithNats: Number(
      ((spread.cpuSecondsPerGbitWithNats ?? NaN) / single.chorusCpuSecondsPerGbit).toFixed(3),
    ),
    /** What crossing to node B adds to a chunk's delay (B's receiver against A's, same run). */
    addedLatencyMs: {
      p50: Number((spread.latencyMs[1]!.p50 - spread.latencyMs[0]!.p50).toFixed(2)),
      p99: Number((spread.latencyMs[1]!.p99 - spread.latencyMs[0]!.p99).toFixed(2)),
    },
  };
}
