// bench/sfu: one publisher (audio + video, ~1.8 Mbit/s) and N subscribers, each group in
// its own process. Reports forwarded packets a second, server CPU and RSS, loss seen by
// the subscribers, and packets forwarded per server CPU-second.
//
//   npm run bench:sfu -- [--subscribers 10,50,100,200,400] [--seconds 10] [--workers 3] [--video-pps 200] [--log-level warn]
import { fork, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { cpuSeconds, rssBytes, startBenchServer } from '../lib/server-process.js';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '10,50,100,200,400' },
    seconds: { type: 'string', default: '10' },
    workers: { type: 'string', default: '3' },
    'video-pps': { type: 'string', default: '200' },
    'log-level': { type: 'string', default: 'warn' },
  },
});
const SIZES = values.subscribers.split(',').map(Number);
const SECONDS = Number(values.seconds);
const WORKERS = Number(values.workers);
const VIDEO_PPS = Number(values['video-pps']);

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

function worker(file: string, args: string[]): ChildProcess {
  return fork(new URL(file, import.meta.url).pathname, args, { execArgv: ['--import', 'tsx'] });
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

async function forwardedPackets(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^chorus_sfu_rtp_packets_forwarded_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

async function runOnce(n: number): Promise<Record<string, unknown>> {
  const server = await startBenchServer({
    WEBRTC_UDP_PORT: String(await freeUdpPort()),
    WEBRTC_BIND_ADDRESS: '127.0.0.1',
    LOG_LEVEL: values['log-level'],
  });
  const workers: ChildProcess[] = [];
  try {
    const res = await fetch(`${server.url}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'bench' }),
    });
    const room = ((await res.json()) as { id: string }).id;
    const pub = worker('./publisher.ts', [server.url, room, 'pub', String(VIDEO_PPS)]);
    workers.push(pub);
    await ask(pub, 'ready');

    const setup0 = performance.now();
    const subs: ChildProcess[] = [];
    const per = Math.ceil(n / WORKERS);
    for (let i = 0, left = n; i < WORKERS && left > 0; i++, left -= per) {
      const w = worker('./subscribers.ts', [server.url, room, 'pub', String(Math.min(per, left)), `s${i}`]);
      subs.push(w);
      workers.push(w);
    }
    const ready = await Promise.all(subs.map((w) => ask(w, 'ready')));
    const connected = ready.reduce((s, r) => s + Number(r.connected), 0);
    const setupSeconds = (performance.now() - setup0) / 1000;
    await new Promise((r) => setTimeout(r, 2000)); // settle: keyframe requests, first SRs

    const before = await Promise.all(subs.map((w) => ask(w, 'report')));
    const sent0 = Number((await ask(pub, 'report')).sent);
    const fwd0 = await forwardedPackets(server.url);
    const cpu0 = cpuSeconds(server.pid);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    const fwd = (await forwardedPackets(server.url)) - fwd0;
    const sent = Number((await ask(pub, 'report')).sent) - sent0;
    await new Promise((r) => setTimeout(r, 200)); // the last packets in flight
    const after = await Promise.all(subs.map((w) => ask(w, 'report')));
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
      serverRssMiB: Number((rss / 2 ** 20).toFixed(1)),
      lossPercent: expected > 0 ? Number(((1 - received / expected) * 100).toFixed(3)) : null,
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
    videoPps: VIDEO_PPS,
  }),
);
for (const n of SIZES) console.log(JSON.stringify(await runOnce(n)));
