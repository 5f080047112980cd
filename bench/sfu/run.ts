// bench/sfu: one publisher (audio + video, ~1.8 Mbit/s) and N subscribers, each group in
// its own process. Reports forwarded packets a second, server CPU and RSS, loss seen by
// the subscribers, and packets forwarded per server CPU-second.
//
//   npm run bench:sfu -- [--subscribers 10,50,100,200,400] [--seconds 10] [--workers 3] [--video-pps 200] [--log-level warn] [--probes 10] [--no-pin]
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { cpuSeconds, cpuSplit, rssBytes, startBenchServer } from '../lib/server-process.js';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '10,50,100,200,400' },
    seconds: { type: 'string', default: '10' },
    workers: { type: 'string', default: '3' },
    'video-pps': { type: 'string', default: '200' },
    'log-level': { type: 'string', default: 'warn' },
    probes: { type: 'string', default: '10' },
    pin: { type: 'boolean', default: true },
  },
});
const SIZES = values.subscribers.split(',').map(Number);
const SECONDS = Number(values.seconds);
const WORKERS = Number(values.workers);
const VIDEO_PPS = Number(values['video-pps']);
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
  if (values.pin && os.cpus().length > 1) execFileSync('taskset', ['-a', '-pc', String(cpu), String(pid)]);
}

function worker(file: string, args: string[], cpu = 1): ChildProcess {
  const w = fork(new URL(file, import.meta.url).pathname, args, { execArgv: ['--import', 'tsx'] });
  pin(w.pid!, cpu);
  return w;
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
}> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string): number =>
    Number(new RegExp(`^chorus_sfu_${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    forwarded: read('rtp_packets_forwarded_total'),
    sendErrors: read('send_errors_total'),
    retransmitted: read('rtp_packets_retransmitted_total'),
    // From every subscriber's receiver reports, not only the probes'.
    reportedLost: read('subscriber_packets_lost'),
    reportingLegs: read('subscriber_legs_reporting'),
  };
}

async function runOnce(n: number): Promise<Record<string, unknown>> {
  const server = await startBenchServer({
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
  });
  pin(server.pid, 0);
  const workers: ChildProcess[] = [];
  try {
    const res = await fetch(`${server.url}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'bench' }),
    });
    const room = ((await res.json()) as { id: string }).id;
    // The publisher (about 2 % of a core) shares the server's CPU: on the clients' core it
    // would be starved and then send in bursts.
    const pub = worker('./publisher.ts', [server.url, room, 'pub', String(VIDEO_PPS)], 0);
    workers.push(pub);
    await ask(pub, 'ready');

    const setup0 = performance.now();
    const subs: ChildProcess[] = [];
    const per = Math.ceil(n / WORKERS);
    for (let i = 0, left = n; i < WORKERS && left > 0; i++, left -= per) {
      const w = worker('./subscribers.ts', [
        server.url,
        room,
        'pub',
        String(Math.min(per, left)),
        `s${i}`,
        String(PROBES),
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
    const counters0 = await sfuCounters(server.url);
    const cpu0 = cpuSeconds(server.pid);
    const split0 = cpuSplit(server.pid);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    const split1 = cpuSplit(server.pid);
    const kernelShare = (split1.system - split0.system) / Math.max(0.01, cpu);
    const counters1 = await sfuCounters(server.url);
    const fwd = counters1.forwarded - counters0.forwarded;
    const [pub1, ...after] = await Promise.all([pub, ...subs].map((w) => ask(w, 'report')));
    const sent = Number(pub1!.sent) - sent0;
    const rss = rssBytes(server.pid);
    const sum = (rs: Report[], k: string): number => rs.reduce((s, r) => s + Number(r[k]), 0);
    const received = sum(after, 'received') - sum(before, 'received');
    const expected = sum(after, 'expected') - sum(before, 'expected');
    return {
      subscribers: n,
      connected,
      setupSeconds: Number(setupSeconds.toFixed(1)),
      publishedPps: Math.round(sent / elapsed),
      forwardedPps: Math.round(fwd / elapsed),
      serverCpuPercent: Math.round((cpu / elapsed) * 100),
      packetsPerCpuSecond: cpu > 0 ? Math.round(fwd / cpu) : null,
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
    await server.stop();
  }
}

console.log(
  JSON.stringify({
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    seconds: SECONDS,
    workers: WORKERS,
    pinned: values.pin,
    videoPps: VIDEO_PPS,
  }),
);
for (const n of SIZES) console.log(JSON.stringify(await runOnce(n)));
