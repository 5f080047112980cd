// bench/signal: N idle Signal connections held by one server, then P pairs forwarding
// messages in a closed loop. Reports connections held, server memory per idle
// connection, server CPU to accept them (cookie check included), messages/s, forwarded
// messages per server CPU-second, p50/p99 latency and server CPU.
//
//   npm run bench:signal -- [--connections 5000] [--pairs 100] [--window 8] [--seconds 10]
//                           [--bytes 200] [--rate 5000 --steady-seconds 45]
//                           [--heartbeat-seconds 30] [--no-pin] [--semi-space-mib 16]
//                           [--no-crowd] [--realtime-steady] [--server peerjs]
//                           [--load-writes turn|each]
//
// The comparison load of issue 17 (the PeerJS-style load: 10,000 connections, 100 pairs x
// 8 in flight, 200-byte JSON frames) is `--connections 10000 --pairs 100 --window 8`.
// With --rate R: after the closed loop, an open loop at a steady R messages a second
// (spread over the pairs, one way) for --steady-seconds, heartbeats on at the server's
// default (or --heartbeat-seconds): p50/p99/max of one hop and the hops over 20 ms, so a
// heartbeat sweep that stalls the server shows. Run it past one heartbeat interval.
// `slowHopCauses` says what each hop over 20 ms waited on: a GC pause of the server (its
// pauses are recorded by a bench-only preload), one of the load generator, or neither;
// `serverGcPauses` and `loadGeneratorGcPauses` list the window's pauses by kind.
//
// The idle connections (all but the pairs') are opened and held by a child process
// (idle-crowd.ts), so the process that times the hops has 200 sockets, not 10,000: a GC
// of a heap holding 10,000 sockets pauses it for tens of ms, which it counted as slow
// hops (#17.1). `--no-crowd` holds them all in this process, as before.
//
// --load-writes: in the closed loop, this process (one process standing in for the 200
// clients of the pairs, on one core) writes its answers to one read's messages in one
// write per socket (`turn`, the default since session 14), or each in a write of its own
// (`each`, as before). Writing each alone it was the loop's bottleneck (45 % of its busy
// samples in writev, 99-100 % of its core with the server at 81-85 %), so the server's
// figure measured how it copes with a slow client. `loadGeneratorCpuPercent` tells which
// side was saturated; the steady phase's sends are one a socket per tick either way.
//
// --realtime-steady: the server and this process run SCHED_FIFO (`chrt`, root) during the
// steady phase only, so that on a shared box the other processes do not preempt them.
//
// The server runs with `--max-semi-space-size=16`, as `npm start`, `start:dist` and the
// image start it (V8's young generation capped at 2 x 16 MiB; Node 24 grows it to 128 MiB
// under the connection burst otherwise); `--semi-space-mib 0` runs it with V8's default.
//
// Memory per idle connection: the server's RSS (and used heap) 2 s after the last of the N
// connections opened, less the same 2 s after the registrations and before the first
// connection, divided by N. No collection is forced, so the garbage of the burst not yet
// collected counts: an upper bound of what an idle connection holds.
//
// On Linux with taskset (unless --no-pin), the server is pinned to CPU 0 and this load
// generator to CPU 1, so the server's CPU figures are one core's.
//
// --server peerjs: the same load (the same N idle connections held by the child crowd, the
// same pairs, window, frame size, pinning, CPU accounting and steady phase) against a
// PeerJS server (npm `peer`, latest 1.x, `PeerServer({ port, path: '/' })` with its
// concurrent_limit raised to N), to compare the two side by side (#17.1). `peer` is not a
// project dependency: the first run installs it into ~/.cache/chorus-bench/peerjs
// (`npm install --prefix <dir> peer@1 --no-save`; see peerjs-server.ts). The clients speak
// PeerJS's protocol: `/peerjs?key=peerjs&id=u<i>&token=<random>`, open at the server's
// OPEN (so an accept is counted to the same point: the server's answer), frames `{"type":
// "CANDIDATE","dst":..,"payload":..}` padded to --bytes (OFFER for the probes, ANSWER in
// the steady phase), received as `{type, src, dst, payload}`, and `{"type":"HEARTBEAT"}`
// from every client every --heartbeat-seconds (default 5, the PeerJS client's; Chorus
// pings from the server instead). No registration: a PeerJS client names itself. Its
// server runs with V8's default young generation (as packaged) unless --semi-space-mib is
// given; the figures read from Chorus's /metrics (heap, young generation, event-loop
// delay, connections held as the server counts them) are null for it.
//
// With --cluster: the same closed loop twice in one run, first on one node, then across
// two nodes (a nats-server -js started here, two Chorus processes with CLUSTER_NATS_URL):
// each pair's sender is connected to node A and its receiver to node B, so every hop
// crosses the bus. Reports forwarded messages per server CPU-second (summed over the
// Chorus processes, and with nats-server's too) and p50/p99 of one hop for both.
//
//   npm run bench:signal -- --cluster [--pairs 50] [--window 1] [--seconds 5]
import { parseArgs } from 'node:util';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import WebSocket from 'ws';
import { openSignalSocket } from './open-signal-socket.js';
import { openPeerJsSocket } from './open-peerjs-socket.js';
import { ensurePeerJs, startPeerJsServer } from './peerjs-server.js';
import { NatsServerProcess } from '../../test/fixtures/nats-server.js';
import {
  cpuSeconds,
  cpuSplit,
  eventLoopLag,
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
    bytes: { type: 'string', default: '200' },
    rate: { type: 'string', default: '0' },
    'steady-seconds': { type: 'string', default: '45' },
    'heartbeat-seconds': { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    'semi-space-mib': { type: 'string' },
    'no-crowd': { type: 'boolean', default: false },
    'realtime-steady': { type: 'boolean', default: false },
    server: { type: 'string', default: 'chorus' },
    'load-writes': { type: 'string', default: 'turn' },
  },
});
const CLUSTER = values.cluster;
if (values['load-writes'] !== 'turn' && values['load-writes'] !== 'each')
  throw new Error('--load-writes: turn or each');
/** The closed loop's answers to one read leave as one write per socket (see corkForTurn). */
const WRITES_PER_TURN = values['load-writes'] === 'turn';
if (values.server !== 'chorus' && values.server !== 'peerjs') throw new Error('--server: chorus or peerjs');
/** The server measured is PeerJS's (see the header); Chorus otherwise. */
const PEERJS = values.server === 'peerjs';
if (PEERJS && CLUSTER) throw new Error('--server peerjs runs one node only');
/** PeerJS clients send a HEARTBEAT this often (its client's default: 5 s). */
const PEERJS_HEARTBEAT_MS = Number(values['heartbeat-seconds'] ?? 5) * 1000;
/** The wire type of each of the bench's kinds of frame: PeerJS forwards only its own. */
const WIRE_TYPE = PEERJS
  ? { t: 'CANDIDATE', probe: 'OFFER', s: 'ANSWER' }
  : { t: 't', probe: 'probe', s: 's' };
// The cluster comparison needs no idle crowd: just the pairs.
const N = Number(values.connections ?? (CLUSTER ? 2 * Number(values.pairs) : 5000));
const PAIRS = Math.min(Number(values.pairs), Math.floor(N / 2));
const WINDOW = Number(values.window);
const SECONDS = Number(values.seconds);
/** Size of each forwarded frame as the sender writes it (the PeerJS comparison used 200). */
const FRAME_BYTES = Number(values.bytes);
const RATE = Number(values.rate);
const STEADY_SECONDS = Number(values['steady-seconds']);
const SERVER_ENV: Record<string, string> = {
  SIGNAL_RATE_LIMIT: '100000',
  SIGNAL_RATE_BURST: '100000',
  ...(values['heartbeat-seconds'] ? { SIGNAL_HEARTBEAT_SECONDS: values['heartbeat-seconds'] } : {}),
};
// Chorus as it is started in production (npm start, the image); PeerJS as packaged.
const SEMI_SPACE_MIB = Number(values['semi-space-mib'] ?? (PEERJS ? 0 : 16));
/**
 * Preloaded into the server (bench only): records its GC pauses (start on the wall clock,
 * length, kind) and writes them as JSON to $BENCH_GC_LOG as it exits, so the steady phase
 * can tell which slow hops a server GC pause explains.
 */
const SERVER_GC_LOG = `
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
const file = process.env.BENCH_GC_LOG;
if (file) {
  const kinds = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };
  const pauses = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if (pauses.length < 200000) pauses.push([performance.timeOrigin + e.startTime, e.duration, kinds[e.detail?.kind] ?? 'other']);
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => writeFileSync(file, JSON.stringify(pauses)));
}`;
// Read by startBenchServer; the production start flag first, any profiling flags after.
process.env.BENCH_NODE_ARGS = [
  SEMI_SPACE_MIB > 0 ? `--max-semi-space-size=${SEMI_SPACE_MIB}` : '',
  `--import=data:text/javascript,${encodeURIComponent(SERVER_GC_LOG)}`,
  process.env.BENCH_NODE_ARGS ?? '',
].join(' ');
/**
 * During the steady phase only, the server and this process run SCHED_FIFO (chrt), so on
 * a shared box other processes do not preempt them: the hops then time the code, not the
 * box. Each uses a fifth of its core there, so the others keep the rest.
 */
const REALTIME_STEADY = values['realtime-steady'];
/** The idle connections held by a child process (see idle-crowd.ts), unless --no-crowd. */
const CROWD = !values['no-crowd'];
const PIN = !values['no-pin'] && !CLUSTER && os.cpus().length >= 2 && hasTaskset();

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Every thread of a process to SCHED_FIFO priority 10 (true) or back to SCHED_OTHER. All of
 * them: with the main thread alone raised, a scavenge waited for its GC helper threads,
 * which other processes preempted (scavenges of 130-160 ms in the load generator and 22 ms
 * in the server, BENCHMARKS.md #17.1).
 */
function realtime(pid: number, on: boolean): void {
  execFileSync('chrt', ['-a', ...(on ? ['-f', '-p', '10'] : ['-o', '-p', '0']), String(pid)], {
    stdio: 'ignore',
  });
}

/** Pins every thread of a process to one CPU. */
function pin(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/**
 * A frame of FRAME_BYTES: `{"target":..,"type":..,"payload":{"t":<send time>,"pad":".."}}`
 * (PeerJS: `{"type":..,"dst":..,"payload":..}`, its type for the kind: WIRE_TYPE).
 * The send time is padded with spaces (JSON whitespace) so every frame has the same size.
 */
function frame(target: string, kind: keyof typeof WIRE_TYPE, at: number): string {
  const t = at.toFixed(3).padStart(14, ' ');
  const head = PEERJS
    ? `{"type":"${WIRE_TYPE[kind]}","dst":"${target}","payload":{"t":${t},"pad":"`
    : `{"target":"${target}","type":"${kind}","payload":{"t":${t},"pad":"`;
  const tail = '"}}';
  return head + 'x'.repeat(Math.max(0, FRAME_BYTES - head.length - tail.length)) + tail;
}
/** Cluster runs: Signal only, so two processes on one box do not fight over the WebRTC port. */
const SIGNAL_ONLY = { VOIP_ENABLED: 'no', BEEP_ENABLED: 'no', STREAM_ENABLED: 'no', BLUESKY_ENABLED: 'no' };

async function register(url: string, name: string, attempt = 0): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: name }),
    });
  } catch (err) {
    // A kept-alive connection the server closed as it was reused (a loaded box): again.
    if (attempt < 3) return register(url, name, attempt + 1);
    throw err;
  }
  if (!res.ok) throw new Error(`register ${name}: ${res.status}`);
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}

async function inBatches<T>(count: number, batch: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  for (let i = 0; i < count; i += batch) {
    const part = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => fn(i + j)));
    part.forEach((v, j) => (out[i + j] = v));
  }
  return out;
}

/** ws's client socket's TCP socket (not a public field, stable across ws 8). */
const tcpOf = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket;
const corked = new Set<WebSocket>();
const uncorkAll = (): void => {
  for (const ws of corked) tcpOf(ws).uncork();
  corked.clear();
};
/**
 * Corks `ws`'s TCP socket until the end of this turn: the closed loop's answers to the
 * messages of one read leave in one write, not a write system call each (why: the header's
 * --load-writes).
 */
function corkForTurn(ws: WebSocket): void {
  if (corked.has(ws)) return;
  if (corked.size === 0) process.nextTick(uncorkAll);
  corked.add(ws);
  tcpOf(ws).cork();
}

interface LoopResult {
  messagesPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
  /** CPU seconds of each measured process over the loop. */
  cpuSeconds: number[];
  /** Write and read system calls of the first process over the loop (socket writes, reads). */
  syscalls: { writes: number; reads: number };
  /** The kernel's share of the first process's CPU over the loop (system / (user + system)). */
  systemShare: number;
  /**
   * This process's (the load generator's) CPU over the loop, as a share of one core: near
   * 100 %, the load generator and not the server sets the loop's pace.
   */
  loadGeneratorCpuPercent: number;
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
      const msg = JSON.parse((data as Buffer).toString()) as { payload: { t: number }; type: string };
      if (msg.type === WIRE_TYPE.t) {
        latencies.push(performance.now() - msg.payload.t);
        delivered++;
      } else if (msg.type === WIRE_TYPE.probe) first.add(p);
      if (!running) return;
      if (WRITES_PER_TURN) corkForTurn(self);
      self.send(frame(peer, 't', performance.now()));
    };
    a.on('message', onMessage(a, `u${2 * p + 1}`));
    b.on('message', onMessage(b, `u${2 * p}`));
  }
  // A probe per pair until it comes back: across nodes a fresh connection's bus
  // subscription reaches nats-server a moment after its socket opens.
  const deadline = Date.now() + 10_000;
  while (first.size < PAIRS && Date.now() < deadline) {
    for (let p = 0; p < PAIRS; p++)
      if (!first.has(p)) sockets[2 * p]!.send(frame(`u${2 * p + 1}`, 'probe', 0));
    await new Promise((r) => setTimeout(r, 200));
  }
  if (first.size < PAIRS) throw new Error(`only ${first.size} of ${PAIRS} pairs reach each other`);
  running = false;
  await new Promise((r) => setTimeout(r, 500)); // let the probes' echoes drain
  running = true;
  for (let p = 0; p < PAIRS; p++)
    for (let w = 0; w < WINDOW; w++) sockets[2 * p]!.send(frame(`u${2 * p + 1}`, 't', performance.now()));
  await new Promise((r) => setTimeout(r, 500)); // warm-up
  const cpu0 = pids.map(cpuSeconds);
  const split0 = cpuSplit(pids[0]!);
  const io0 = syscallCounts(pids[0]!);
  const self0 = process.cpuUsage();
  const start = performance.now();
  latencies.length = 0;
  delivered = 0;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const elapsed = (performance.now() - start) / 1000;
  const self = process.cpuUsage(self0);
  const count = delivered;
  const lat = latencies.slice().sort((x, y) => x - y);
  const cpu = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!);
  const split = cpuSplit(pids[0]!);
  const io = syscallCounts(pids[0]!);
  running = false;
  await new Promise((r) => setTimeout(r, 500)); // let the loop drain
  for (const s of sockets.slice(0, 2 * PAIRS)) s.removeAllListeners('message');
  return {
    messagesPerSecond: Math.round(count / elapsed),
    latencyMsP50: Number(percentile(lat, 50).toFixed(3)),
    latencyMsP99: Number(percentile(lat, 99).toFixed(3)),
    cpuSeconds: cpu.map((c) => Number(c.toFixed(2))),
    syscalls: { writes: io.writes - io0.writes, reads: io.reads - io0.reads },
    systemShare: systemShare(split0, split),
    loadGeneratorCpuPercent: Math.round((self.user + self.system) / 1e4 / elapsed),
    elapsed,
    delivered: count,
  };
}

interface SteadyResult {
  rate: number;
  sent: number;
  delivered: number;
  latencyMsP50: number;
  latencyMsP99: number;
  latencyMsMax: number;
  hopsOver20Ms: number;
  serverCpuPercent: number;
  /** The server's own event-loop delay over the window (prom-client's monitorEventLoopDelay). */
  serverEventLoopDelayMs: { p99: number; max: number };
  /** The open loop's start and end on the wall clock (ms). */
  window: [number, number];
  /** Each hop over 20 ms: when it was sent (wall clock, ms) and how long it took. */
  slowHops: Array<[number, number]>;
  /** This process's GC pauses during the window. */
  clientGcPauses: GcPause[];
}

/**
 * Open loop at RATE messages a second for STEADY_SECONDS: every 10 ms, RATE/100 frames
 * from the pairs' even sockets to their partners, round robin. The latency of a hop does
 * not depend on the previous one, so a server stall shows as the hops queued behind it.
 */
async function steadyLoop(sockets: WebSocket[], pid: number, url: string): Promise<SteadyResult> {
  const latencies: number[] = [];
  const slowHops: Array<[sentAt: number, ms: number]> = [];
  for (let p = 0; p < PAIRS; p++) {
    sockets[2 * p + 1]!.on('message', (data: WebSocket.RawData) => {
      const msg = JSON.parse((data as Buffer).toString()) as { payload: { t: number }; type: string };
      if (msg.type !== WIRE_TYPE.s) return;
      const hop = performance.now() - msg.payload.t;
      latencies.push(hop);
      if (hop > 20) slowHops.push([performance.timeOrigin + msg.payload.t, hop]);
    });
  }
  await eventLoopDelay(url); // a scrape resets the server's delay histogram
  const perTick = RATE / 100;
  let sent = 0;
  let next = 0;
  const cpu0 = cpuSeconds(pid);
  const start = performance.now();
  const clientGc = observeGcPauses();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      if (elapsed >= STEADY_SECONDS * 1000) {
        clearInterval(timer);
        resolve();
        return;
      }
      // Catch up to the schedule, so a late timer does not lower the rate.
      const due = Math.floor((elapsed / 10 + 1) * perTick);
      for (; sent < due; sent++) {
        const p = next++ % PAIRS;
        sockets[2 * p]!.send(frame(`u${2 * p + 1}`, 's', performance.now()));
      }
    }, 10);
  });
  const cpu = cpuSeconds(pid) - cpu0;
  const elapsed = (performance.now() - start) / 1000;
  const loopDelay = await eventLoopDelay(url);
  await new Promise((r) => setTimeout(r, 1000)); // the last hops
  const lat = latencies.slice().sort((x, y) => x - y);
  clientGc.disconnect();
  return {
    rate: Math.round(sent / elapsed),
    sent,
    delivered: lat.length,
    latencyMsP50: Number(percentile(lat, 50).toFixed(3)),
    latencyMsP99: Number(percentile(lat, 99).toFixed(3)),
    latencyMsMax: Number((lat[lat.length - 1] ?? NaN).toFixed(1)),
    hopsOver20Ms: lat.filter((l) => l > 20).length,
    serverCpuPercent: Math.round((cpu / elapsed) * 100),
    serverEventLoopDelayMs: loopDelay,
    window: [performance.timeOrigin + start, performance.timeOrigin + start + elapsed * 1000],
    slowHops,
    clientGcPauses: clientGc.pauses,
  };
}

/** A GC pause: its start on the wall clock (ms), its length (ms), its kind. */
type GcPause = [start: number, ms: number, kind: string];
/** perf_hooks' NODE_PERFORMANCE_GC_* flags. */
const GC_KINDS: Record<number, string> = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };

/** This process's GC pauses from now until disconnect(). */
function observeGcPauses(): { pauses: GcPause[]; disconnect(): void } {
  const pauses: GcPause[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0;
      pauses.push([performance.timeOrigin + e.startTime, e.duration, GC_KINDS[kind] ?? 'other']);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return { pauses, disconnect: () => observer.disconnect() };
}

/** Count, longest and total of the pauses in `window`, by kind. */
function pauseSummary(pauses: GcPause[], window: [number, number]): Record<string, unknown> {
  const out: Record<string, { count: number; maxMs: number; totalMs: number }> = {};
  for (const [at, ms, kind] of pauses) {
    if (at < window[0] || at > window[1]) continue;
    const k = (out[kind] ??= { count: 0, maxMs: 0, totalMs: 0 });
    k.count++;
    k.maxMs = Math.max(k.maxMs, Number(ms.toFixed(1)));
    k.totalMs = Number((k.totalMs + ms).toFixed(1));
  }
  return out;
}

/**
 * What each hop over 20 ms was waiting on: a GC pause of 2 ms or more in the server or in
 * this process (the load generator) during the hop, or neither (the server busy with
 * something else, or not scheduled: on a shared box, other processes).
 */
function slowHopCauses(
  hops: Array<[number, number]>,
  server: GcPause[],
  client: GcPause[],
): Record<string, number> {
  const overlaps = (pauses: GcPause[], from: number, to: number): boolean =>
    pauses.some(([at, ms]) => ms >= 2 && at < to && at + ms > from);
  const causes = { serverGc: 0, loadGeneratorGc: 0, neither: 0 };
  for (const [sentAt, ms] of hops) {
    if (overlaps(server, sentAt, sentAt + ms)) causes.serverGc++;
    else if (overlaps(client, sentAt, sentAt + ms)) causes.loadGeneratorGc++;
    else causes.neither++;
  }
  return causes;
}

/** p99 and max of the server's event-loop delay since the previous scrape, in ms (Chorus's). */
async function eventLoopDelay(url: string): Promise<{ p99: number; max: number }> {
  if (PEERJS) return { p99: NaN, max: NaN };
  return eventLoopLag(await (await fetch(`${url}/metrics`)).text());
}

/** Read and write system calls a process made so far (`syscr`, `syscw` of /proc/<pid>/io). */
function syscallCounts(pid: number): { writes: number; reads: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return {
    writes: Number(/syscw: (\d+)/.exec(io)?.[1] ?? NaN),
    reads: Number(/syscr: (\d+)/.exec(io)?.[1] ?? NaN),
  };
}

/**
 * The size of the server's young generation (V8's new space), from its /metrics. Node 24
 * grows it from 32 to 128 MiB under the allocation of a connection burst (Node 20 keeps
 * 32 MiB): about 10 KiB of RSS for each of 10,000 connections that no connection holds.
 */
async function youngGeneration(url: string): Promise<number> {
  if (PEERJS) return NaN;
  const metrics = await (await fetch(`${url}/metrics`)).text();
  return Number(/chorus_nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)/.exec(metrics)?.[1] ?? NaN);
}

/** The server's used JavaScript heap, from its /metrics. */
async function heapUsed(url: string): Promise<number> {
  if (PEERJS) return NaN;
  const metrics = await (await fetch(`${url}/metrics`)).text();
  return Number(/chorus_nodejs_heap_size_used_bytes (\d+)/.exec(metrics)?.[1] ?? NaN);
}

/** The kernel's share of a process's CPU between two readings of cpuSplit. */
function systemShare(a: { user: number; system: number }, b: { user: number; system: number }): number {
  const system = b.system - a.system;
  const total = system + b.user - a.user;
  return total > 0 ? Number((system / total).toFixed(2)) : NaN;
}

const perCpuSecond = (r: LoopResult, cpu: number): number => Math.round(r.delivered / cpu);
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;

/**
 * The idle connections (all but the pairs') opened and held by a child process
 * (idle-crowd.ts), pinned with the load generator.
 */
async function idleCrowd(
  url: string,
  credentials: { cookies: string[] } | { peerIds: string[]; heartbeatMs: number },
): Promise<{ close(): Promise<void> }> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./idle-crowd.ts', import.meta.url)), {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  if (PIN) pin(child.pid!, 1);
  const reply = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      child.once('message', (m) => {
        const r = m as Record<string, unknown>;
        if (typeof r.error === 'string') reject(new Error(`idle crowd: ${r.error}`));
        else resolve(r);
      });
      child.once('exit', () => reject(new Error('idle crowd exited')));
    });
  const opened = reply();
  child.send({ url, ...credentials });
  await opened;
  return {
    async close() {
      const closed = reply().catch(() => undefined);
      child.send({ close: true });
      await closed;
      child.kill();
    },
  };
}

/** One node: N held connections (memory per connection), then the loop on the first pairs. */
async function oneNode(env: Record<string, string>): Promise<Record<string, unknown>> {
  const gcDir = mkdtempSync(join(os.tmpdir(), 'bench-signal-gc-'));
  const gcLog = join(gcDir, 'server-gc.json');
  const server = PEERJS
    ? await startPeerJsServer(N, { BENCH_GC_LOG: gcLog })
    : await startBenchServer({ ...SERVER_ENV, BENCH_GC_LOG: gcLog, ...env });
  if (PIN) {
    pin(server.pid, 0);
    pin(process.pid, 1);
  }
  let result: Record<string, unknown>;
  let steady: SteadyResult | undefined;
  try {
    // A PeerJS client names itself (u<i>); a Signal user registers for a session cookie.
    const cookies = PEERJS ? [] : await inBatches(N, 100, (i) => register(server.url, `u${i}`));
    const open = PEERJS
      ? (url: string, i: number) => openPeerJsSocket(url, `u${i}`, PEERJS_HEARTBEAT_MS)
      : (url: string, i: number) => openSignalSocket(url, cookies[i]!);
    await new Promise((r) => setTimeout(r, 2000)); // let the registrations' garbage go
    const heapBefore = await heapUsed(server.url);
    const youngBefore = await youngGeneration(server.url);
    const rssBefore = rssBytes(server.pid);
    const acceptCpu0 = cpuSeconds(server.pid);
    const acceptSplit0 = cpuSplit(server.pid);
    const t0 = performance.now();
    // The pairs' sockets here; the idle rest in the crowd's process (or here, --no-crowd).
    const here = CROWD ? 2 * PAIRS : N;
    const sockets = await inBatches(here, 200, (i) => open(server.url, i));
    const idle = PEERJS
      ? {
          peerIds: Array.from({ length: N - here }, (_, i) => `u${here + i}`),
          heartbeatMs: PEERJS_HEARTBEAT_MS,
        }
      : { cookies: cookies.slice(here) };
    const crowd = CROWD && N > here ? await idleCrowd(server.url, idle) : undefined;
    const connectSeconds = (performance.now() - t0) / 1000;
    const acceptCpu = cpuSeconds(server.pid) - acceptCpu0;
    const acceptSystemShare = systemShare(acceptSplit0, cpuSplit(server.pid));
    await new Promise((r) => setTimeout(r, 2000)); // let the server settle
    const rssAfter = rssBytes(server.pid);
    const heapAfter = await heapUsed(server.url);
    const youngAfter = await youngGeneration(server.url);
    // PeerJS: every socket opened had its OPEN (the crowd's and ours; a refusal throws).
    const held = PEERJS
      ? N
      : Number(
          /chorus_websockets_open\{surface="signal"\} (\d+)/.exec(
            await (await fetch(`${server.url}/metrics`)).text(),
          )?.[1] ?? NaN,
        );
    const r = await closedLoop(sockets, [server.pid]);
    if (RATE > 0) {
      if (REALTIME_STEADY) for (const pid of [server.pid, process.pid]) realtime(pid, true);
      try {
        steady = await steadyLoop(sockets, server.pid, server.url);
      } finally {
        if (REALTIME_STEADY) for (const pid of [server.pid, process.pid]) realtime(pid, false);
      }
    }
    for (const s of sockets) s.terminate();
    await crowd?.close();
    result = {
      server: PEERJS ? `PeerJS (peer@${ensurePeerJs()})` : 'Chorus',
      ...(PEERJS ? { peerjsClientHeartbeatSeconds: PEERJS_HEARTBEAT_MS / 1000 } : {}),
      pinned: PIN ? 'server on CPU 0, load generator on CPU 1' : 'no',
      idleConnectionsHeldBy: crowd ? 'a child process of the load generator' : 'the load generator',
      steadyScheduling: REALTIME_STEADY ? 'SCHED_FIFO (server and load generator)' : 'default',
      frameBytes: FRAME_BYTES,
      connectionsRequested: N,
      connectionsHeld: held,
      connectSeconds: Number(connectSeconds.toFixed(2)),
      acceptCpuSeconds: Number(acceptCpu.toFixed(2)),
      acceptCpuMicrosecondsPerConnection: Math.round((acceptCpu / N) * 1e6),
      acceptSystemCpuShare: acceptSystemShare,
      serverRssMiBBefore: Number((rssBefore / 2 ** 20).toFixed(1)),
      serverRssMiBAfter: Number((rssAfter / 2 ** 20).toFixed(1)),
      bytesPerConnection: Math.round((rssAfter - rssBefore) / N),
      youngGenerationMiBBefore: Number((youngBefore / 2 ** 20).toFixed(1)),
      youngGenerationMiBAfter: Number((youngAfter / 2 ** 20).toFixed(1)),
      /** RSS per connection less the young generation's growth (garbage room, not held). */
      bytesPerConnectionBesidesYoungGeneration: Math.round(
        (rssAfter - rssBefore - (youngAfter - youngBefore)) / N,
      ),
      /** The JavaScript heap's share (garbage not yet collected included). */
      heapBytesPerConnection: Math.round((heapAfter - heapBefore) / N),
      messagesPerSecond: r.messagesPerSecond,
      messagesPerServerCpuSecond: perCpuSecond(r, sum(r.cpuSeconds)),
      serverWriteSyscallsPerMessage: Number((r.syscalls.writes / r.delivered).toFixed(2)),
      serverReadSyscallsPerMessage: Number((r.syscalls.reads / r.delivered).toFixed(2)),
      serverSystemCpuShare: r.systemShare,
      latencyMsP50: r.latencyMsP50,
      latencyMsP99: r.latencyMsP99,
      serverCpuPercent: Math.round((sum(r.cpuSeconds) / r.elapsed) * 100),
      loadGeneratorCpuPercent: r.loadGeneratorCpuPercent,
    };
  } finally {
    await server.stop();
  }
  if (steady) {
    // The server wrote its GC pauses as it exited.
    let serverGc: GcPause[] = [];
    try {
      serverGc = JSON.parse(readFileSync(gcLog, 'utf8')) as GcPause[];
    } catch {
      /* no log: the server did not exit cleanly */
    }
    const { window, slowHops, clientGcPauses, ...figures } = steady;
    result.steady = {
      ...figures,
      slowHopCauses: slowHopCauses(slowHops, serverGc, clientGcPauses),
      serverGcPauses: pauseSummary(serverGc, window),
      loadGeneratorGcPauses: pauseSummary(clientGcPauses, window),
    };
  }
  rmSync(gcDir, { recursive: true, force: true });
  return result;
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
    const sockets = await inBatches(N, 200, (i) =>
      openSignalSocket(i % 2 === 0 ? a.url : b.url, cookies[i]!),
    );
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

const head = {
  machine,
  node: process.version,
  loadAverage: os.loadavg().map((l) => Number(l.toFixed(1))),
  pairs: PAIRS,
  window: WINDOW,
  loadWrites: WRITES_PER_TURN ? 'one write per socket per turn' : 'one write per message',
  serverNodeArgs: process.env.BENCH_NODE_ARGS.trim(),
  seconds: SECONDS,
};
if (!CLUSTER) {
  console.log(JSON.stringify({ ...head, ...(await oneNode({})) }, null, 2));
} else {
  const single = await oneNode(SIGNAL_ONLY);
  const cluster = await twoNodes();
  console.log(JSON.stringify({ ...head, oneNode: single, twoNodes: cluster }, null, 2));
}
