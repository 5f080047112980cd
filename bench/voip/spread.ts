// bench:voip --cluster (#15.8): one VOIP room on one process, then the same room spread
// over two (its mixer on A; speakers and listeners split between A and B over a
// nats-server started here), in the same run, so the figures compare on the same
// (shared) machine at the same moment. Reports Chorus CPU per listener summed over the
// processes (and with nats-server's), the ratio of the two layouts, and what each
// listener received against real time.
//
//   npm run bench:voip -- --cluster [--listeners 20,100] [--speakers 4] [--talking 2] [--format ogg] [--seconds 10]
import http from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { KeyUser } from '../../test/fixtures/voip-client.js';
import { oneNodeThenTwo } from '../lib/one-node-then-two.js';
import { cpuSeconds, type BenchServer } from '../lib/server-process.js';

interface Options {
  speakers: number;
  talking: number;
  format: string;
  seconds: number;
}

const SERVER_ENV = { VOIP_MAX_ROOM_MEMBERS: '10000', VOIP_MAX_ROOMS: '100000' };

/** Where members stream: `speakOn[i]` for speaker i, `listenOn[j]` for listener j. */
interface Layout {
  speakOn: (i: number) => BenchServer;
  listenOn: (j: number) => BenchServer;
  chorus: number[];
  natsPid?: number;
}

interface Measured {
  /** Chorus's processes before the room opens (heartbeats, timers): the fixed cost. */
  idleCpuPercent: number[];
  chorusCpuPercent: number[];
  /** Chorus CPU (all processes) per listener, ms per second of audio. */
  chorusCpuMsPerListenerSecond: number;
  natsCpuPercent?: number;
  cpuMsPerListenerSecondWithNats?: number;
  perListenerKbps: number;
}

/** A listener: a plain GET read to the end, counting bytes (http, no web streams). */
function listen(base: string, path: string, count: (n: number) => void): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${path}`, { agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`joinRoom: ${res.statusCode}`));
      res.on('data', (c: Buffer) => count(c.length));
      res.on('error', () => undefined);
      resolve(req);
    });
    req.on('error', reject);
  });
}

async function measure(layout: Layout, room: string, listeners: number, opts: Options): Promise<Measured> {
  const uploads: WebSocket[] = [];
  const requests: http.ClientRequest[] = [];
  let received = 0;
  const count = (n: number) => void (received += n);
  const idle0 = layout.chorus.map(cpuSeconds);
  await new Promise((r) => setTimeout(r, 3000));
  const idleCpuPercent = layout.chorus.map((p, i) => Math.round(((cpuSeconds(p) - idle0[i]!) / 3) * 100));
  const join = async (server: BenchServer) => {
    const u = new KeyUser(server.url);
    const q = await u.mediaQuery({ roomID: room, format: opts.format });
    requests.push(await listen(server.url, `/joinRoom?${q}`, count));
    return u;
  };
  // Speakers first (the first opens the room: its mixer is on that process), each also
  // listening (mix-minus) where it speaks.
  for (let i = 0; i < opts.speakers; i++) {
    const server = layout.speakOn(i);
    const u = await join(server);
    uploads.push(await u.uploadSocket('/upRoom', { roomID: room }));
  }
  for (let j = 0; j < listeners; j++) await join(layout.listenOn(j));
  const tones = [440, 550, 660, 770, 880].map((f) =>
    Array.from({ length: 50 }, (_, n) => {
      const b = Buffer.alloc(1920);
      for (let k = 0; k < 960; k++)
        b.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * f * (n * 960 + k)) / 48_000)), k * 2);
      return b;
    }),
  );
  const silence = Buffer.alloc(1920);
  let tick = 0;
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const send = () => {
    const due = Math.floor((performance.now() - t0) / 20);
    for (; tick <= due; tick++)
      uploads.forEach((ws, i) => ws.send(i < opts.talking ? tones[i % tones.length]![tick % 50]! : silence));
    timer = setTimeout(send, 20 - ((performance.now() - t0) % 20));
  };
  send();
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const pids = [...layout.chorus, ...(layout.natsPid ? [layout.natsPid] : [])];
    const cpu0 = pids.map(cpuSeconds);
    const bytes0 = received;
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, opts.seconds * 1000));
    const wall = (performance.now() - w0) / 1000;
    const cpu = pids.map((p, i) => cpuSeconds(p) - cpu0[i]!);
    const bytes = received - bytes0;
    const ears = listeners + opts.speakers;
    const chorusCpu = cpu.slice(0, layout.chorus.length).reduce((a, b) => a + b, 0);
    const perListener = (s: number) => Number(((s * 1000) / wall / ears).toFixed(3));
    return {
      idleCpuPercent,
      chorusCpuPercent: cpu.slice(0, layout.chorus.length).map((c) => Math.round((c / wall) * 100)),
      chorusCpuMsPerListenerSecond: perListener(chorusCpu),
      ...(layout.natsPid
        ? {
            natsCpuPercent: Math.round((cpu.at(-1)! / wall) * 100),
            cpuMsPerListenerSecondWithNats: perListener(chorusCpu + cpu.at(-1)!),
          }
        : {}),
      perListenerKbps: Math.round(((bytes * 8) / wall / ears / 1000) * 10) / 10,
    };
  } finally {
    clearTimeout(timer);
    for (const ws of uploads) ws.close();
    for (const r of requests) r.destroy();
  }
}

/** The same room on one process, then spread over two. */
async function compare(listeners: number, opts: Options): Promise<Record<string, unknown>> {
  const { single, spread } = await oneNodeThenTwo(
    SERVER_ENV,
    (one) =>
      measure(
        { speakOn: () => one, listenOn: () => one, chorus: [one.pid] },
        `one-${listeners}`,
        listeners,
        opts,
      ),
    // Speaker 0 opens the room on A (its mixer); the others alternate B, A, ...;
    // listeners alternate A, B.
    ({ a, b, natsPid }) =>
      measure(
        {
          speakOn: (i) => (i % 2 === 0 ? a : b),
          listenOn: (j) => (j % 2 === 0 ? a : b),
          chorus: [a.pid, b.pid],
          natsPid,
        },
        `two-${listeners}`,
        listeners,
        opts,
      ),
  );
  return {
    listeners: listeners + opts.speakers,
    oneProcess: single,
    twoProcesses: spread,
    /** Chorus CPU per listener, two processes against one (1.0: spreading costs nothing). */
    cpuPerListenerRatio: Number(
      (spread.chorusCpuMsPerListenerSecond / single.chorusCpuMsPerListenerSecond).toFixed(3),
    ),
    cpuPerListenerRatioWithNats: Number(
      ((spread.cpuMsPerListenerSecondWithNats ?? NaN) / single.chorusCpuMsPerListenerSecond).toFixed(3),
    ),
  };
}

export async function voipSpreadMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      cluster: { type: 'boolean', default: true },
      listeners: { type: 'string', default: '20,100' },
      speakers: { type: 'string', default: '4' },
      talking: { type: 'string', default: '2' },
      format: { type: 'string', default: 'ogg' },
      seconds: { type: 'string', default: '10' },
    },
  });
  const opts: Options = {
    speakers: Number(values.speakers),
    talking: Number(values.talking),
    format: values.format,
    seconds: Number(values.seconds),
  };
  console.log(
    JSON.stringify({
      machine: `${os.cpus().length} x ${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
      node: process.version,
      ...opts,
      loadAverage: os.loadavg().map((l) => Math.round(l * 10) / 10),
    }),
  );
  for (const n of values.listeners.split(',').map(Number))
    console.log(JSON.stringify(await compare(n, opts)));
}
