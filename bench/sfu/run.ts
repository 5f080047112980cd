// bench/sfu: one publisher (audio + video, ~1.8 Mbit/s) and N subscribers, each group in
// its own process. Reports forwarded packets a second, server CPU and RSS, loss seen by
// the subscribers, and packets forwarded per server CPU-second, and the probes' latency
// (publisher's send to subscriber's receive of each video frame's last packet, p50/p99).
//
// With --cluster, each size runs twice in the same run: on one process, then on a cluster
// of three (a nats-server -js started here; the publisher on node A, the subscribers
// spread over nodes B and C, so every packet crosses the relay): forwarded packets per
// CPU-second summed over the Chorus processes (and with nats-server's), against the one
// process's, and the latency the relay adds. Each process's idle CPU is measured over 3 s
// before the room opens and taken off (packetsPerBusyCpuSecond), so the cluster is not
// charged for three processes' timers. Pinned (the default, 2-core box): every Chorus
// process, nats-server and the publisher share CPU 0; the subscriber processes CPU 1.
// To profile the servers: BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR", then
// `npx tsx bench/sfu/profile-summary.ts DIR/*.cpuprofile`.
//
// With --rtx-compare, each size runs twice on one process in the same run: with NACK and RTX
// negotiated both ways (the publisher's offer and the subscribers' carry RTX, as Chromium's
// do) and with neither (no NACK feedback from the publisher's offer, no RTX): the cost per
// forwarded packet of the retransmission machinery (the SFU's NACK generator reads every
// published packet; RTX legs carry their own payload type and SSRC) when nothing is lost.
//
//   npm run bench:sfu -- [--subscribers 10,50,100,200,400] [--seconds 10] [--workers 3] [--video-pps 200] [--video-fps 0] [--log-level warn] [--probes 10] [--no-pin] [--cluster]
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import {
  cpuSeconds,
  cpuSplit,
  eventLoopLag,
  rssBytes,
  startBenchServer,
  type BenchServer,
} from '../lib/server-process.js';
import { NatsServerProcess } from '../../test/fixtures/nats-server.js';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '10,50,100,200,400' },
    seconds: { type: 'string', default: '10' },
    workers: { type: 'string', default: '3' },
    'video-pps': { type: 'string', default: '200' },
    // 0: video packets spread evenly; e.g. 30: sent as frames (see publisher.ts).
    'video-fps': { type: 'string', default: '0' },
    'log-level': { type: 'string', default: 'warn' },
    probes: { type: 'string', default: '10' },
    pin: { type: 'boolean', default: true },
    // Node 20's parseArgs has no negated booleans: `--no-pin` is an option of its own.
    'no-pin': { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
    'rtx-compare': { type: 'boolean', default: false },
  },
});
const SIZES = values.subscribers.split(',').map(Number);
const SECONDS = Number(values.seconds);
const WORKERS = Number(values.workers);
const VIDEO_PPS = Number(values['video-pps']);
const VIDEO_FPS = Number(values['video-fps']);
/** Subscribers per worker that count packets (see subscribers.ts). */
const PROBES = Number(values.probes);

interface Report {
  type: string;
  [k: string]: number | string;
}

function ask(w: ChildProcess, type: 'ready' | 'report'): Promise<Report> {
  return new Promise((resolve, reject) => {
    const on = (m: Report): void => {
      if (m.type !== type) return;
      w.off('message', on);
      w.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number): void => reject(new Error(`worker exited with ${code}`));
    w.on('message', on);
    w.once('exit', onExit);
    if (type === 'report') w.send({ type });
  });
}

/**
 * With --pin (the default), the server (and the light publisher) get CPU 0 and every
 * subscriber process CPU 1, so the clients' cost (decrypting, counting) does not starve
 * the server being measured.
 */
function pin(pid: number, cpu: number): void {
  if (values.pin && !values['no-pin'] && os.cpus().length > 1)
    execFileSync('taskset', ['-a', '-pc', String(cpu), String(pid)]);
}

function worker(file: string, args: string[], cpu = 1): ChildProcess {
  const w = fork(new URL(file, import.meta.url).pathname, args, { execArgv: ['--import', 'tsx'] });
  pin(w.pid!, cpu);
  return w;
}

/**
 * CPU seconds of a process's main thread only (the event loop: JS, the NATS client, the
 * binding's callbacks); the rest of the process's CPU is its native threads (the WebRTC
 * library's transport threads: ICE, DTLS/SRTP, SCTP) and libuv's pool.
 */
function mainThreadCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The SFU's counters: forwarded packets, sends the binding refused, retransmissions. */
async function sfuCounters(url: string): Promise<{
  forwarded: number;
  sendErrors: number;
  retransmitted: number;
  reportedLost: number;
  reportingLegs: number;
  relaySent: number;
  relayMessages: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string): number =>
    Number(new RegExp(`^chorus_sfu_${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  // Since the previous scrape (each starts it afresh): at the window's end, the window's.
  const lag = eventLoopLag(text);
  return {
    loopDelayP99Ms: lag.p99,
    loopDelayMaxMs: lag.max,
    forwarded: read('rtp_packets_forwarded_total'),
    sendErrors: read('send_errors_total'),
    retransmitted: read('rtp_packets_retransmitted_total'),
    // From every subscriber's receiver reports, not only the probes'.
    reportedLost: read('subscriber_packets_lost'),
    reportingLegs: read('subscriber_legs_reporting'),
    // The relay (node A in a cluster): packets and the bus messages they went in.
    relaySent: read('relay_packets_sent_total'),
    relayMessages: read('relay_messages_sent_total'),
  };
}

/** Where the publisher and the subscribers connect, and the processes to measure. */
interface Topology {
  name: 'oneProcess' | 'cluster';
  publisherUrl: string;
  subscriberUrls: string[];
  servers: BenchServer[];
  /** nats-server, measured apart (absent on one process). */
  natsPid?: number;
  stop(): Promise<void>;
}

async function serverEnv(): Promise<Record<string, string>> {
  return {
    WEBRTC_NACK_HISTORY_PACKETS: process.env.WEBRTC_NACK_HISTORY_PACKETS ?? '512',
    // Passed through when set, to try other admission settings.
    ...Object.fromEntries(
      ['WEBRTC_OVERLOAD_BUSY_PERCENT', 'WEBRTC_MAX_PEERS'].flatMap((k) =>
        process.env[k] ? [[k, process.env[k]]] : [],
      ),
    ),
    WEBRTC_UDP_PORT: String(await freeUdpPort()),
    WEBRTC_BIND_ADDRESS: '127.0.0.1',
    LOG_LEVEL: values['log-level'],
  };
}

async function oneProcess(): Promise<Topology> {
  const server = await startBenchServer(await serverEnv());
  pin(server.pid, 0);
  return {
    name: 'oneProcess',
    publisherUrl: server.url,
    subscriberUrls: [server.url],
    servers: [server],
    stop: () => server.stop(),
  };
}

/** nats-server -js and three nodes: A carries the publisher, B and C the subscribers. */
async function threeNodes(): Promise<Topology> {
  const nats = new NatsServerProcess({ jetstream: true });
  await nats.start();
  pin(nats.pid, 0);
  const servers: BenchServer[] = [];
  try {
    for (const id of ['a', 'b', 'c']) {
      const s = await startBenchServer({
        ...(await serverEnv()),
        CLUSTER_NATS_URL: nats.url,
        CLUSTER_NODE_ID: id,
      });
      pin(s.pid, 0);
      servers.push(s);
    }
    // Every node sees the three before anyone publishes.
    for (const s of servers) {
      for (let i = 0; ; i++) {
        const r = (await (await fetch(`${s.url}/readyz`)).json()) as {
          details?: { cluster?: { nodes?: number } };
        };
        if (r.details?.cluster?.nodes === 3) break;
        if (i > 200) throw new Error('the three nodes did not see each other');
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  } catch (err) {
    for (const s of servers) await s.stop();
    await nats.dispose();
    throw err;
  }
  return {
    name: 'cluster',
    publisherUrl: servers[0]!.url,
    subscriberUrls: [servers[1]!.url, servers[2]!.url],
    servers,
    natsPid: nats.pid,
    stop: async () => {
      for (const s of servers) await s.stop();
      await nats.dispose();
    },
  };
}

async function sumCounters(urls: string[]): Promise<Awaited<ReturnType<typeof sfuCounters>>> {
  const all = await Promise.all(urls.map(sfuCounters));
  const out = {
    forwarded: 0,
    sendErrors: 0,
    retransmitted: 0,
    reportedLost: 0,
    reportingLegs: 0,
    relaySent: 0,
    relayMessages: 0,
  };
  for (const c of all) for (const k of Object.keys(out) as Array<keyof typeof out>) out[k] += c[k];
  // The longest of the nodes' delays, not a sum.
  return {
    ...out,
    loopDelayP99Ms: Math.max(...all.map((c) => c.loopDelayP99Ms)),
    loopDelayMaxMs: Math.max(...all.map((c) => c.loopDelayMaxMs)),
  };
}

/** What the bench clients offer for retransmission: as before, RTX and NACK, or neither. */
type Retransmission = 'as-is' | 'rtx' | 'plain';

async function runOnce(
  n: number,
  topology: () => Promise<Topology>,
  retransmission: Retransmission = 'as-is',
): Promise<Record<string, unknown>> {
  const topo = await topology();
  const urls = topo.servers.map((s) => s.url);
  const pids = topo.servers.map((s) => s.pid);
  const cpuOf = (): number => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const splitOf = (): { user: number; system: number } =>
    pids.map(cpuSplit).reduce((a, b) => ({ user: a.user + b.user, system: a.system + b.system }));
  const workers: ChildProcess[] = [];
  try {
    // What the processes burn doing nothing (timers, heartbeats; and the shared machine's
    // noise): three processes idle more than one, which says nothing about the relay.
    const idle0 = cpuOf();
    const idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, 3000));
    const idleRate = (cpuOf() - idle0) / ((performance.now() - idleT0) / 1000);
    const res = await fetch(`${topo.publisherUrl}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'bench' }),
    });
    const room = ((await res.json()) as { id: string }).id;
    // The publisher (about 2 % of a core) shares the server's CPU: on the clients' core it
    // would be starved and then send in bursts.
    const pub = worker(
      './publisher.ts',
      [topo.publisherUrl, room, 'pub', String(VIDEO_PPS), String(VIDEO_FPS), retransmission],
      0,
    );
    workers.push(pub);
    await ask(pub, 'ready');

    const setup0 = performance.now();
    const subs: ChildProcess[] = [];
    const per = Math.ceil(n / WORKERS);
    for (let i = 0, left = n; i < WORKERS && left > 0; i++, left -= per) {
      const w = worker('./subscribers.ts', [
        // Spread over the subscribers' nodes (one on one process, B and C in a cluster).
        topo.subscriberUrls[i % topo.subscriberUrls.length]!,
        room,
        'pub',
        String(Math.min(per, left)),
        `s${i}`,
        String(PROBES),
        retransmission,
      ]);
      subs.push(w);
      workers.push(w);
    }
    const ready = await Promise.all(subs.map((w) => ask(w, 'ready')));
    const connected = ready.reduce((s, r) => s + Number(r.connected), 0);
    const probes = ready.reduce((s, r) => s + Number(r.probes), 0);
    const setupSeconds = (performance.now() - setup0) / 1000;
    await new Promise((r) => setTimeout(r, 2000)); // settle: keyframe requests, first SRs

    // Publisher and subscribers are asked at the same instant at both ends of the window.
    const [pub0, ...before] = await Promise.all([pub, ...subs].map((w) => ask(w, 'report')));
    const sent0 = Number(pub0!.sent);
    const counters0 = await sumCounters(urls);
    const cpu0 = cpuOf();
    const each0 = pids.map(cpuSeconds);
    const main0 = pids.map(mainThreadCpuSeconds);
    const split0 = splitOf();
    const nats0 = topo.natsPid === undefined ? 0 : cpuSeconds(topo.natsPid);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuOf() - cpu0;
    const each = pids.map((pid, i) => cpuSeconds(pid) - each0[i]!);
    const main = pids.map((pid, i) => mainThreadCpuSeconds(pid) - main0[i]!);
    const natsCpu = topo.natsPid === undefined ? 0 : cpuSeconds(topo.natsPid) - nats0;
    const split1 = splitOf();
    const kernelShare = (split1.system - split0.system) / Math.max(0.01, cpu);
    const counters1 = await sumCounters(urls);
    const fwd = counters1.forwarded - counters0.forwarded;
    const [pub1, ...after] = await Promise.all([pub, ...subs].map((w) => ask(w, 'report')));
    const sent = Number(pub1!.sent) - sent0;
    const rss = pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
    const sum = (rs: Report[], k: string): number => rs.reduce((s, r) => s + Number(r[k]), 0);
    const received = sum(after, 'received') - sum(before, 'received');
    const expected = sum(after, 'expected') - sum(before, 'expected');
    const p50s = after.map((r) => Number(r.p50)).filter((x) => Number.isFinite(x));
    return {
      topology: topo.name,
      ...(retransmission === 'as-is' ? {} : { retransmission }),
      subscribers: n,
      connected,
      setupSeconds: Number(setupSeconds.toFixed(1)),
      publishedPps: Math.round(sent / elapsed),
      forwardedPps: Math.round(fwd / elapsed),
      serverCpuPercent: Math.round((cpu / elapsed) * 100),
      // Summed over the Chorus processes (one, or three in a cluster).
      packetsPerCpuSecond: cpu > 0 ? Math.round(fwd / cpu) : null,
      idleCpuPercent: Math.round(idleRate * 100),
      // Per process: the main thread's share of its CPU (the rest is native threads).
      mainThreadCpuPercent: main.map((c) => Math.round((c / elapsed) * 100)),
      // The same with the processes' idle CPU taken off: what forwarding itself costs.
      packetsPerBusyCpuSecond:
        cpu - idleRate * elapsed > 0 ? Math.round(fwd / (cpu - idleRate * elapsed)) : null,
      ...(topo.natsPid === undefined
        ? {}
        : {
            natsServerCpuPercent: Math.round((natsCpu / elapsed) * 100),
            packetsPerCpuSecondWithNats: Math.round(fwd / (cpu + natsCpu)),
            // Node A (the publisher's: it only relays), B and C (forwarding to the legs).
            perNodeCpuPercent: each.map((c) => Math.round((c / elapsed) * 100)),
            // Batching (relay-batch.ts): packets per bus message on node A in the window.
            relayPacketsPerMessage: Number(
              (
                (counters1.relaySent - counters0.relaySent) /
                Math.max(1, counters1.relayMessages - counters0.relayMessages)
              ).toFixed(2),
            ),
          }),
      latencyP50Ms: p50s.length ? Number((p50s.reduce((a, b) => a + b, 0) / p50s.length).toFixed(2)) : null,
      latencyP99Ms: Number(Math.max(...after.map((r) => Number(r.p99))).toFixed(2)),
      // The server's (the longest of the nodes') over the window: a tail the loop explains.
      serverEventLoopDelayMs: { p99: counters1.loopDelayP99Ms, max: counters1.loopDelayMaxMs },
      // On loopback the kernel share includes the receivers' side of the UDP stack.
      kernelPercentOfCpu: Math.round(kernelShare * 100),
      serverRssMiB: Number((rss / 2 ** 20).toFixed(1)),
      probes,
      deliveredPercent: Number(((received / (sent * probes)) * 100).toFixed(2)),
      starvedSubscribers: sum(after, 'starved'),
      lossPercent: expected > 0 ? Number(((1 - received / expected) * 100).toFixed(3)) : null,
      sendErrors: counters1.sendErrors - counters0.sendErrors,
      reportingLegs: counters1.reportingLegs,
      // Loss every leg's receiver reported in the window, against what was forwarded.
      reportedLossPercent:
        fwd > 0 ? Number((((counters1.reportedLost - counters0.reportedLost) / fwd) * 100).toFixed(3)) : null,
      retransmitted: counters1.retransmitted - counters0.retransmitted,
      worstSubscriberLossPercent: Number(
        (Math.max(...after.map((r) => Number(r.worstLoss))) * 100).toFixed(2),
      ),
    };
  } finally {
    for (const w of workers) w.send({ type: 'exit' });
    await new Promise((r) => setTimeout(r, 300));
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    await topo.stop();
  }
}

console.log(
  JSON.stringify({
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    seconds: SECONDS,
    workers: WORKERS,
    pinned: values.pin && !values['no-pin'],
    videoPps: VIDEO_PPS,
    videoFps: VIDEO_FPS,
  }),
);
for (const n of SIZES) {
  if (values['rtx-compare']) {
    const plain = await runOnce(n, oneProcess, 'plain');
    console.log(JSON.stringify(plain));
    const rtx = await runOnce(n, oneProcess, 'rtx');
    console.log(JSON.stringify(rtx));
    console.log(
      JSON.stringify({
        subscribers: n,
        // Above 0: each forwarded packet costs that much more CPU with NACK and RTX negotiated.
        rtxCostPercentPerForwardedPacket: Number(
          ((Number(plain.packetsPerCpuSecond) / Number(rtx.packetsPerCpuSecond) - 1) * 100).toFixed(1),
        ),
        rtxCostPercentPerForwardedPacketBusy: Number(
          ((Number(plain.packetsPerBusyCpuSecond) / Number(rtx.packetsPerBusyCpuSecond) - 1) * 100).toFixed(
            1,
          ),
        ),
      }),
    );
    continue;
  }
  const one = await runOnce(n, oneProcess);
  console.log(JSON.stringify(one));
  if (!values.cluster) continue;
  const three = await runOnce(n, threeNodes);
  console.log(JSON.stringify(three));
  const ratio = Number(three.packetsPerCpuSecond) / Number(one.packetsPerCpuSecond);
  console.log(
    JSON.stringify({
      subscribers: n,
      // Below 1: each forwarded packet costs more CPU across nodes; 1 - ratio is the relay's share.
      clusterVsOneProcessPacketsPerCpuSecond: Number(ratio.toFixed(3)),
      relayCostPercentPerForwardedPacket: Number(((1 / ratio - 1) * 100).toFixed(1)),
      // Idle CPU of each process taken off both sides.
      relayCostPercentPerForwardedPacketBusy: Number(
        ((Number(one.packetsPerBusyCpuSecond) / Number(three.packetsPerBusyCpuSecond) - 1) * 100).toFixed(1),
      ),
      addedLatencyP50Ms: Number((Number(three.latencyP50Ms) - Number(one.latencyP50Ms)).toFixed(2)),
      addedLatencyP99Ms: Number((Number(three.latencyP99Ms) - Number(one.latencyP99Ms)).toFixed(2)),
    }),
  );
}
