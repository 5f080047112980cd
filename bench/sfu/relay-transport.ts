// bench/sfu/relay-transport: the two ways a node could relay a track's RTP to other nodes,
// measured side by side in one run. One sender process sends 1,100-byte packets at a
// fixed rate to R receiver processes (the other nodes), either
//   nats: one publish per packet on one subject, NATS fans out (what Chorus does), or
//   udp:  node-to-node datagrams, one send per packet and receiving node,
// and `none`, the sender making and stamping its packets and sending nothing: its CPU is
// the baseline to take off the sender's figures (the pacing loop, a Buffer per packet).
// Reports CPU microseconds per packet on the sender (per packet relayed, whatever R) and
// on each receiver (per packet received), and the added latency p50/p99 (send to receive,
// one machine's clock).
//
//   npx tsx bench/sfu/relay-transport.ts [--pps 2500] [--seconds 10] [--receivers 2]
import { fork, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { NatsServerProcess } from '../../test/fixtures/nats-server.js';
import { cpuSeconds, percentile } from '../lib/server-process.js';

type Mode = 'nats' | 'udp' | 'none';
const SUBJECT = 'chorus.sfu.rtp.bench';
const PACKET_BYTES = 1100;
const now = (): number => performance.timeOrigin + performance.now();

interface Msg {
  type: string;
  [k: string]: unknown;
}

function ask(w: ChildProcess, send: Msg | undefined, type: string): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const on = (m: Msg): void => {
      if (m.type !== type) return;
      w.off('message', on);
      resolve(m);
    };
    w.on('message', on);
    w.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
    if (send) w.send(send);
  });
}

async function receiver(mode: Mode, natsUrl: string): Promise<void> {
  const latencies: number[] = [];
  let received = 0;
  let cpu0 = process.cpuUsage();
  const onPacket = (d: Uint8Array): void => {
    received++;
    const b = Buffer.from(d.buffer, d.byteOffset, d.length);
    latencies.push(now() - b.readDoubleBE(12));
  };
  let port = 0;
  if (mode === 'nats') {
    const nc = await connect({ servers: natsUrl });
    nc.subscribe(SUBJECT, { callback: (_e, m) => onPacket(m.data) });
    await nc.flush();
  } else {
    const s = createSocket('udp4');
    s.on('message', onPacket);
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    s.setRecvBufferSize(4 * 2 ** 20);
    port = s.address().port;
  }
  process.send!({ type: 'ready', port });
  process.on('message', (m: Msg) => {
    if (m.type === 'start') {
      received = 0;
      latencies.length = 0;
      cpu0 = process.cpuUsage();
    }
    if (m.type === 'report') {
      const cpu = process.cpuUsage(cpu0);
      const sorted = latencies.sort((a, b) => a - b);
      process.send!({
        type: 'report',
        received,
        cpuUs: cpu.user + cpu.system,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
      });
    }
    if (m.type === 'exit') process.exit(0);
  });
}

async function sender(mode: Mode, natsUrl: string, ports: number[], pps: number): Promise<void> {
  const packet = Buffer.alloc(PACKET_BYTES, 0x5a);
  packet[0] = 0x80;
  packet[1] = 96;
  let publish: (p: Buffer) => void;
  if (mode === 'none') {
    publish = () => undefined;
  } else if (mode === 'nats') {
    const nc = await connect({ servers: natsUrl });
    publish = (p) => nc.publish(SUBJECT, p);
  } else {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    s.setSendBufferSize(4 * 2 ** 20);
    // One datagram per receiving node: UDP has no fan-out between machines.
    publish = (p) => {
      for (const port of ports) s.send(p, port, '127.0.0.1');
    };
  }
  let sent = 0;
  let running = false;
  let t0 = 0;
  let cpu0 = process.cpuUsage();
  setInterval(() => {
    if (!running) return;
    const due = ((performance.now() - t0) / 1000) * pps;
    while (sent < due) {
      // A fresh buffer per packet, as node-datachannel hands the SFU one (and NATS may
      // send it after this tick).
      const p = Buffer.from(packet);
      p.writeUInt16BE(sent & 0xffff, 2);
      p.writeDoubleBE(now(), 12);
      publish(p);
      sent++;
    }
  }, 2);
  process.send!({ type: 'ready' });
  process.on('message', (m: Msg) => {
    if (m.type === 'start') {
      sent = 0;
      t0 = performance.now();
      cpu0 = process.cpuUsage();
      running = true;
    }
    if (m.type === 'report') {
      running = false;
      const cpu = process.cpuUsage(cpu0);
      process.send!({ type: 'report', sent, cpuUs: cpu.user + cpu.system });
    }
    if (m.type === 'exit') process.exit(0);
  });
}

const role = process.argv[2];
if (role === 'receiver') await receiver(process.argv[3] as Mode, process.argv[4]!);
else if (role === 'sender')
  await sender(
    process.argv[3] as Mode,
    process.argv[4]!,
    JSON.parse(process.argv[5]!) as number[],
    Number(process.argv[6]),
  );
else await main();

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pps: { type: 'string', default: '2500' },
      seconds: { type: 'string', default: '10' },
      receivers: { type: 'string', default: '2' },
    },
  });
  const PPS = Number(values.pps);
  const SECONDS = Number(values.seconds);
  const R = Number(values.receivers);
  const nats = new NatsServerProcess({ jetstream: false });
  await nats.start();
  const file = new URL(import.meta.url).pathname;
  const spawnWorker = (args: string[]): ChildProcess => fork(file, args, { execArgv: ['--import', 'tsx'] });
  console.log(
    JSON.stringify({
      machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
      load: os.loadavg().map((l) => Number(l.toFixed(1))),
      node: process.version,
      pps: PPS,
      seconds: SECONDS,
      receivers: R,
      packetBytes: PACKET_BYTES,
    }),
  );
  try {
    for (const mode of ['none', 'nats', 'udp'] as const) {
      const receivers =
        mode === 'none' ? [] : Array.from({ length: R }, () => spawnWorker(['receiver', mode, nats.url]));
      const ready = await Promise.all(receivers.map((w) => ask(w, undefined, 'ready')));
      const ports = ready.map((r) => Number(r.port));
      const snd = spawnWorker(['sender', mode, nats.url, JSON.stringify(ports), String(PPS)]);
      await ask(snd, undefined, 'ready');
      for (const w of [...receivers, snd]) w.send({ type: 'start' });
      const natsCpu0 = cpuSeconds(nats.pid);
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      const natsCpu = cpuSeconds(nats.pid) - natsCpu0;
      const s = await ask(snd, { type: 'report' }, 'report');
      // Let the last packets land before the receivers count.
      await new Promise((r) => setTimeout(r, 300));
      const rs = await Promise.all(receivers.map((w) => ask(w, { type: 'report' }, 'report')));
      const sent = Number(s.sent);
      const received = rs.reduce((n, r) => n + Number(r.received), 0);
      const recvCpu = rs.reduce((n, r) => n + Number(r.cpuUs), 0);
      console.log(
        JSON.stringify({
          mode,
          sent,
          deliveredPercent: R && rs.length ? Number(((received / (sent * R)) * 100).toFixed(2)) : null,
          senderUsPerPacket: Number((Number(s.cpuUs) / sent).toFixed(2)),
          receiverUsPerPacket: Number((recvCpu / Math.max(1, received)).toFixed(2)),
          latencyP50Ms: rs.length ? Number(Math.max(...rs.map((r) => Number(r.p50))).toFixed(3)) : null,
          latencyP99Ms: rs.length ? Number(Math.max(...rs.map((r) => Number(r.p99))).toFixed(3)) : null,
          // nats-server's own work (idle in udp mode), per packet relayed.
          natsServerUsPerPacket: Number(((natsCpu * 1e6) / sent).toFixed(2)),
        }),
      );
      for (const w of [...receivers, snd]) w.send({ type: 'exit' });
      await new Promise((r) => setTimeout(r, 300));
      for (const w of [...receivers, snd]) if (w.exitCode === null) w.kill('SIGKILL');
    }
  } finally {
    await nats.dispose();
  }
}
