// bench/voip: group rooms over the VOIP surface. Per room, S speakers upload a tone over
// WebSocket in real time (20 ms frames) and also listen (mix-minus), and L more people
// only listen; listeners read Ogg/Opus (or WAV) over HTTP. Measures the server's CPU and
// RSS, the audio bytes listeners received against what real time would give, mixer
// ticks the server skipped, its longest event-loop stall (while listeners connect, and
// while measuring), how long connecting everyone took, and Opus encodes and Ogg pages
// built per second (flat in the number of listeners when they share a mix), and what
// it costs the server when everyone hangs up at once (CPU, longest stall).
//
// Listeners are bare TCP sockets that send a GET and count what comes back: a client
// reading thousands of streams through fetch spends a core on them (undici's web
// streams) and would measure itself, not the server. They connect `--concurrency` at a time.
//
// The server runs as production starts it (the Dockerfile's `node --max-semi-space-size=16
// dist/src/main.js serve`): built into a temp folder first, or `--dist DIR` (a folder
// `npm run build` made inside the checkout); `--tsx` runs src/main.ts through tsx instead,
// which also turns on source maps: every Error's stack is then mapped, which costs
// (#17.3: the ECONNRESET/EPIPE errors of 2,000 listeners hanging up at once).
//
// The stalls come from the server's event-loop delay histogram, read (and reset) with
// `/metrics?name=...`: only the few metrics read here, not the whole registry, whose
// serialisation with 2,000 sockets open was itself a 8-29 ms turn of the server. Each
// phase's start goes to stderr (`phase connecting at <epoch ms>`), to line up with a
// trace or profile of the server.
//
// --turn-trace loads a small timer into the server (TURN_TRACE) and reports, per phase, the
// most main-thread CPU in one turn next to the longest stall: on a loaded box the stalls
// are mostly the server waiting for a core, which the CPU figure leaves out.
//
//   npm run bench:voip -- [--rooms 1,10,50] [--speakers 5] [--talking 5] [--listeners 20] [--format ogg] [--seconds 10] [--concurrency 16] [--no-pin] [--dist DIR | --tsx] [--turn-trace]
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { cpuSeconds, rssBytes, startBenchServer, type BenchServerStart } from '../lib/server-process.js';
import { voipSpreadMain } from './spread.js';

// --cluster (#15.8): a room on one process, then spread over two; see spread.ts.
if (process.argv.includes('--cluster')) {
  await voipSpreadMain(process.argv.slice(2));
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    rooms: { type: 'string', default: '1,10,50' },
    speakers: { type: 'string', default: '5' },
    talking: { type: 'string', default: '5' },
    listeners: { type: 'string', default: '20' },
    format: { type: 'string', default: 'ogg' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    pin: { type: 'boolean', default: true },
    dist: { type: 'string' },
    tsx: { type: 'boolean', default: false },
    'turn-trace': { type: 'boolean', default: false },
  },
  allowNegative: true,
});
const SPEAKERS = Number(values.speakers);
/** Speakers per room sending a tone; the others send silence (a muted or quiet mic). */
const TALKING = Number(values.talking);
const LISTENERS = Number(values.listeners);
const SECONDS = Number(values.seconds);
const FORMAT = values.format;
const CONCURRENCY = Math.max(1, Number(values.concurrency));

function pin(pid: number, cpu: number): void {
  if (values.pin && os.cpus().length > 1)
    execFileSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' });
}

interface User {
  id: string;
  key: KeyObject;
}

function newUser(): User {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const y = Buffer.from(jwk.y!, 'base64url');
  const id = Buffer.concat([Buffer.from([2 + (y[31]! & 1)]), Buffer.from(jwk.x!, 'base64url')]).toString(
    'hex',
  );
  return { id, key: privateKey };
}

async function query(base: string, u: User, params: Record<string, string>): Promise<string> {
  const ticket = await getTicket(base, u);
  const signature = sign('sha256', Buffer.from(ticket), { key: u.key, dsaEncoding: 'ieee-p1363' }).toString(
    'hex',
  );
  return new URLSearchParams({ PKey: u.id, Signature: signature, ...params }).toString();
}

/**
 * A ticket, asked again if the request fails: a kept-alive connection the server closes
 * as it is reused fails the request ("other side closed") on a busy machine.
 */
async function getTicket(base: string, u: User): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${base}/getCallTicket`, { headers: { PKey: u.id } });
      if (res.ok) return await res.text();
      throw new Error(`getCallTicket: ${res.status}`);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

/** 20 ms of a tone at 48 kHz s16le. */
function frame(freq: number, n: number): Buffer {
  const b = Buffer.alloc(1920);
  for (let i = 0; i < 960; i++)
    b.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * freq * (n * 960 + i)) / 48_000)), i * 2);
  return b;
}

/**
 * A listener on a bare socket: sends the GET, checks the status line, then only counts
 * bytes (chunked framing included, a few bytes per write).
 */
function rawListen(base: string, path: string, count: (bytes: number) => void): Promise<net.Socket> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let head = '';
    let streaming = false;
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`));
    socket.on('data', (c: Buffer) => {
      if (streaming) return count(c.length);
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!head.startsWith('HTTP/1.1 200')) {
        socket.destroy();
        return reject(new Error(`joinRoom: ${head.slice(0, head.indexOf('\r\n'))}`));
      }
      streaming = true;
      count(head.length - end - 4);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function runOnce(base: string, pid: number, rooms: number): Promise<Record<string, unknown>> {
  const sockets: WebSocket[] = [];
  const streams: net.Socket[] = [];
  let received = 0;
  const count = (n: number) => void (received += n);
  const listen = async (u: User, room: string) => {
    const q = await query(base, u, { roomID: room, format: FORMAT });
    streams.push(await rawListen(base, `/joinRoom?${q}`, count));
  };
  const stall0 = await scrape(base); // resets the server's event-loop delay histogram
  const started = Date.now();
  mark('connecting');
  for (let r = 0; r < rooms; r++) {
    const room = `bench-room-${r}`;
    for (let s = 0; s < SPEAKERS; s++) {
      const u = newUser();
      const ws = new WebSocket(
        `${base.replace('http', 'ws')}/upRoom?${await query(base, u, { roomID: room })}`,
      );
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      sockets.push(ws);
      await listen(u, room);
    }
    let next = 0;
    let lastReport = Date.now();
    const worker = async () => {
      while (next < LISTENERS) {
        next++;
        await listen(newUser(), room);
        if (Date.now() - lastReport > 5000) {
          lastReport = Date.now();
          console.error(
            `room ${r}: ${streams.length} listening after ${((lastReport - started) / 1000).toFixed(1)} s`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }
  const setupSeconds = (Date.now() - started) / 1000;
  mark('connected');
  const connectStall = (await scrape(base)).maxStallMs;
  void stall0;
  // One timer sends every speaker's next frame, corrected against the clock.
  const frames = [440, 550, 660, 770, 880].map((f) => Array.from({ length: 50 }, (_, n) => frame(f, n)));
  const silence = Buffer.alloc(1920);
  let tick = 0;
  const t0 = performance.now();
  let timer: NodeJS.Timeout;
  const send = () => {
    const due = Math.floor((performance.now() - t0) / 20);
    for (; tick <= due; tick++) {
      sockets.forEach((ws, i) =>
        ws.send(i % SPEAKERS < TALKING ? frames[i % frames.length]![tick % 50]! : silence),
      );
    }
    timer = setTimeout(send, 20 - ((performance.now() - t0) % 20));
  };
  send();
  await new Promise((r) => setTimeout(r, 2000));
  const m0 = await scrape(base);
  const cpu0 = cpuSeconds(pid);
  const bytes0 = received;
  const w0 = performance.now();
  mark('measuring');
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const wall = (performance.now() - w0) / 1000;
  mark('measured');
  const cpu = cpuSeconds(pid) - cpu0;
  const bytes = received - bytes0;
  const m1 = await scrape(base);
  const rss = rssBytes(pid);
  clearTimeout(timer!);
  // Everyone hangs up at once (#17.3): the room empties; how long the server takes to
  // see every leave (its rooms gauge at 0), its CPU and its longest stall meanwhile.
  await scrape(base); // resets the stall histogram
  const leaveCpu0 = cpuSeconds(pid);
  const leave0 = performance.now();
  mark('leaving');
  for (const ws of sockets) ws.close();
  for (const s of streams) s.destroy();
  let leaveStall = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const m = await scrape(base);
    leaveStall = Math.max(leaveStall, m.maxStallMs);
    if (m.rooms === 0) break;
    if (performance.now() - leave0 > 120_000) throw new Error('the room did not empty within 120 s');
  }
  const leaveSeconds = (performance.now() - leave0) / 1000;
  mark('left');
  const leaveCpuMs = (cpuSeconds(pid) - leaveCpu0) * 1000;
  const listeners = rooms * (SPEAKERS + LISTENERS);
  const perListenerKbps = (bytes * 8) / wall / listeners / 1000;
  return {
    rooms,
    speakers: rooms * SPEAKERS,
    listeners,
    setupSeconds: Math.round(setupSeconds * 10) / 10,
    serverCpuPercent: Math.round((cpu / wall) * 100),
    // On a shared machine the server may get less than the core it needs: it then runs
    // fewer mixer ticks (the rest are skipped). CPU per tick it did run, times 50 ticks
    // a second, estimates what keeping up would take.
    serverCpuPercentPerFullSecond: Math.round(
      (cpu / Math.max(1, wall * 50 - (m1.skippedTicks - m0.skippedTicks))) * 50 * 100,
    ),
    cpuPercentPerRoom: Math.round(((cpu / wall) * 100 * 100) / rooms) / 100,
    serverRssMiB: Math.round((rss / 2 ** 20) * 10) / 10,
    perListenerKbps: Math.round(perListenerKbps * 10) / 10,
    skippedTicks: m1.skippedTicks - m0.skippedTicks,
    maxStallMsConnecting: connectStall,
    maxStallMs: m1.maxStallMs,
    encodesPerSecond: Math.round((m1.encodes - m0.encodes) / wall),
    oggPagesPerSecond: Math.round((m1.oggPages - m0.oggPages) / wall),
    oggPageCopiesPerSecond: Math.round((m1.oggPageCopies - m0.oggPageCopies) / wall),
    // Everyone hung up at once: until the room was gone (0.1 s polls), the server's CPU
    // in that time, and its longest stall.
    leaveSeconds: Math.round(leaveSeconds * 10) / 10,
    leaveCpuMs: Math.round(leaveCpuMs),
    maxStallMsLeaving: leaveStall,
  };
}

/** Each phase's start, wall-clock ms (also on stderr, to line up with a profile). */
const marks = new Map<string, number>();
function mark(phase: string): void {
  marks.set(phase, Date.now());
  console.error(`phase ${phase} at ${marks.get(phase)}`);
}

/**
 * Loaded into the server by --turn-trace (`node --import data:...`, so production's node
 * runs it as is): every 5 ms a timer reads the main thread's CPU time
 * (/proc/self/task/PID/schedstat, Linux) and keeps each gap between two of its runs longer
 * than 25 ms, or using over 20 ms of CPU, as [epoch ms at its end, wall ms, main-thread CPU
 * ms]; written at exit to TURN_TRACE_FILE. The wall gap is what the server's event-loop
 * delay histogram sees; the CPU says how much of it was one turn's work and how much the
 * box descheduling the process (#17.3).
 */
const TURN_TRACE = `
import { readFileSync, writeFileSync } from 'node:fs';
const file = process.env.TURN_TRACE_FILE;
const stat = '/proc/self/task/' + process.pid + '/schedstat';
const cpuNs = () => Number(readFileSync(stat, 'latin1').split(' ')[0]);
if (file) {
  const gaps = [];
  let lastWall = performance.now();
  let lastCpu = cpuNs();
  setInterval(() => {
    const wall = performance.now();
    const cpu = cpuNs();
    const w = wall - lastWall;
    const c = (cpu - lastCpu) / 1e6;
    if (w > 25 || c > 20) gaps.push([Date.now(), Math.round(w * 10) / 10, Math.round(c * 10) / 10]);
    lastWall = wall;
    lastCpu = cpu;
  }, 5).unref();
  process.on('exit', () => writeFileSync(file, JSON.stringify(gaps)));
}`;

/**
 * --turn-trace: from TURN_TRACE's gaps, per phase the longest gap between
 * the server's timer runs (wall) and the most main-thread CPU in one gap (one turn's work,
 * whatever the box's load).
 */
function turnsByPhase(file: string): Record<string, { wallMs: number; cpuMs: number }> {
  const gaps = JSON.parse(readFileSync(file, 'utf8')) as [number, number, number][];
  const out: Record<string, { wallMs: number; cpuMs: number }> = {};
  for (const [name, from, to] of [
    ['connecting', 'connecting', 'connected'],
    ['measuring', 'measuring', 'measured'],
    ['leaving', 'leaving', 'left'],
  ] as const) {
    const a = marks.get(from)!;
    const b = marks.get(to)!;
    const inside = gaps.filter(([end, wall]) => end - wall >= a && end <= b);
    out[name] = {
      wallMs: Math.max(0, ...inside.map((g) => g[1])),
      cpuMs: Math.max(0, ...inside.map((g) => g[2])),
    };
  }
  return out;
}

/** What the bench reads; `chorus_nodejs_eventloop_lag_seconds` first: its collect sets the others. */
const SCRAPED = [
  'chorus_nodejs_eventloop_lag_seconds',
  'chorus_nodejs_eventloop_lag_max_seconds',
  'chorus_audio_skipped_ticks_total',
  'chorus_audio_opus_encodes_total',
  'chorus_audio_ogg_pages_total',
  'chorus_audio_ogg_page_copies_total',
  'chorus_voip_rooms',
];
const SCRAPE_QUERY = SCRAPED.map((n) => `name=${n}`).join('&');

/**
 * The server's counters, and its longest event-loop delay since the last scrape
 * (prom-client resets its event-loop histogram at each scrape).
 */
async function scrape(base: string) {
  const text = await (await fetch(`${base}/metrics?${SCRAPE_QUERY}`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    skippedTicks: read('chorus_audio_skipped_ticks_total'),
    maxStallMs: Math.round(read('chorus_nodejs_eventloop_lag_max_seconds') * 1000),
    encodes: read('chorus_audio_opus_encodes_total'),
    oggPages: read('chorus_audio_ogg_pages_total'),
    oggPageCopies: read('chorus_audio_ogg_page_copies_total'),
    rooms: read('chorus_voip_rooms'),
  };
}

console.log(
  JSON.stringify({
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    format: FORMAT,
    speakersPerRoom: SPEAKERS,
    talkingPerRoom: TALKING,
    // The server's default (40 ms since #17.3) unless VOIP_HTTP_FLUSH_MS says otherwise.
    httpFlushMs: process.env.VOIP_HTTP_FLUSH_MS ?? 'server default',
    listenersPerRoom: LISTENERS,
    seconds: SECONDS,
    concurrency: CONCURRENCY,
    server: values.tsx ? 'tsx' : 'production build',
    loadAverage: os.loadavg().map((l) => Math.round(l * 10) / 10),
  }),
);
/** The production start (a build of this checkout), unless --tsx. */
function serverStart(): { start: BenchServerStart; cleanup: () => void } {
  if (values.tsx) return { start: {}, cleanup: () => undefined };
  const production = ['--max-semi-space-size=16']; // the Dockerfile's CMD
  if (values.dist)
    return {
      start: { main: join(resolve(values.dist), 'src/main.js'), nodeArgs: production },
      cleanup: () => undefined,
    };
  const built = mkdtempSync(join(os.tmpdir(), 'chorus-voip-dist-'));
  execFileSync(process.execPath, ['scripts/build-dist.mjs', join(built, 'dist')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Packages resolve from the checkout, as for a dist/ inside it.
  symlinkSync(join(process.cwd(), 'node_modules'), join(built, 'node_modules'));
  return {
    start: { main: join(built, 'dist/src/main.js'), nodeArgs: production },
    cleanup: () => rmSync(built, { recursive: true, force: true }),
  };
}

const { start, cleanup } = serverStart();
console.error(
  `server: ${start.main ? `node ${start.nodeArgs?.join(' ')} ${start.main}` : 'tsx src/main.ts'}`,
);
pin(process.pid, 1);
try {
  for (const rooms of values.rooms.split(',').map(Number)) {
    const trace = values['turn-trace']
      ? join(mkdtempSync(join(os.tmpdir(), 'chorus-turns-')), 'gaps.json')
      : '';
    const server = await startBenchServer(
      {
        VOIP_MAX_ROOM_MEMBERS: '10000',
        VOIP_MAX_ROOMS: '100000',
        ...(process.env.VOIP_HTTP_FLUSH_MS ? { VOIP_HTTP_FLUSH_MS: process.env.VOIP_HTTP_FLUSH_MS } : {}),
        ...(trace ? { TURN_TRACE_FILE: trace } : {}),
      },
      trace
        ? {
            ...start,
            nodeArgs: [
              ...(start.nodeArgs ?? []),
              `--import=data:text/javascript,${encodeURIComponent(TURN_TRACE)}`,
            ],
          }
        : start,
    );
    pin(server.pid, 0);
    try {
      console.log(JSON.stringify(await runOnce(server.url, server.pid, rooms)));
    } finally {
      await server.stop();
    }
    if (trace) console.log(JSON.stringify({ turns: turnsByPhase(trace) }));
  }
} finally {
  cleanup();
}
