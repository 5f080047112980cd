// bench/voip: group rooms over the VOIP surface. Per room, S speakers upload a tone over
// WebSocket in real time (20 ms frames) and also listen (mix-minus), and L more people
// only listen; listeners read Ogg/Opus (or WAV) over HTTP. Measures the server's CPU and
// RSS, the audio bytes listeners received against what real time would give, and mixer
// ticks the server skipped.
//
//   npm run bench:voip -- [--rooms 1,10,50] [--speakers 5] [--talking 5] [--listeners 20] [--format ogg] [--seconds 10] [--no-pin]
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { cpuSeconds, rssBytes, startBenchServer } from '../lib/server-process.js';

const { values } = parseArgs({
  options: {
    rooms: { type: 'string', default: '1,10,50' },
    speakers: { type: 'string', default: '5' },
    talking: { type: 'string', default: '5' },
    listeners: { type: 'string', default: '20' },
    format: { type: 'string', default: 'ogg' },
    seconds: { type: 'string', default: '10' },
    pin: { type: 'boolean', default: true },
  },
  allowNegative: true,
});
const SPEAKERS = Number(values.speakers);
/** Speakers per room sending a tone; the others send silence (a muted or quiet mic). */
const TALKING = Number(values.talking);
const LISTENERS = Number(values.listeners);
const SECONDS = Number(values.seconds);
const FORMAT = values.format;

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
  const ticket = await (await fetch(`${base}/getCallTicket`, { headers: { PKey: u.id } })).text();
  const signature = sign('sha256', Buffer.from(ticket), { key: u.key, dsaEncoding: 'ieee-p1363' }).toString(
    'hex',
  );
  return new URLSearchParams({ PKey: u.id, Signature: signature, ...params }).toString();
}

/** 20 ms of a tone at 48 kHz s16le. */
function frame(freq: number, n: number): Buffer {
  const b = Buffer.alloc(1920);
  for (let i = 0; i < 960; i++)
    b.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * freq * (n * 960 + i)) / 48_000)), i * 2);
  return b;
}

async function runOnce(base: string, pid: number, rooms: number): Promise<Record<string, unknown>> {
  const sockets: WebSocket[] = [];
  const aborts: AbortController[] = [];
  let received = 0;
  const listen = async (u: User, room: string) => {
    const abort = new AbortController();
    aborts.push(abort);
    const res = await fetch(`${base}/joinRoom?${await query(base, u, { roomID: room, format: FORMAT })}`, {
      signal: abort.signal,
    });
    if (!res.ok || !res.body) throw new Error(`joinRoom: ${res.status}`);
    void (async () => {
      try {
        for await (const c of res.body!) received += c.length;
      } catch {
        /* aborted */
      }
    })();
  };
  const started = Date.now();
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
    for (let l = 0; l < LISTENERS; l++) await listen(newUser(), room);
  }
  const setupSeconds = (Date.now() - started) / 1000;
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
  const skipped0 = await skippedTicks(base);
  const cpu0 = cpuSeconds(pid);
  const bytes0 = received;
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const wall = (performance.now() - w0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const bytes = received - bytes0;
  const skipped = (await skippedTicks(base)) - skipped0;
  const rss = rssBytes(pid);
  clearTimeout(timer!);
  for (const ws of sockets) ws.close();
  for (const a of aborts) a.abort();
  const listeners = rooms * (SPEAKERS + LISTENERS);
  const perListenerKbps = (bytes * 8) / wall / listeners / 1000;
  return {
    rooms,
    speakers: rooms * SPEAKERS,
    listeners,
    setupSeconds: Math.round(setupSeconds * 10) / 10,
    serverCpuPercent: Math.round((cpu / wall) * 100),
    cpuPercentPerRoom: Math.round(((cpu / wall) * 100 * 100) / rooms) / 100,
    serverRssMiB: Math.round((rss / 2 ** 20) * 10) / 10,
    perListenerKbps: Math.round(perListenerKbps * 10) / 10,
    skippedTicks: skipped,
  };
}

async function skippedTicks(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^chorus_audio_skipped_ticks_total (\d+)/m.exec(text)?.[1] ?? 0);
}

console.log(
  JSON.stringify({
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    format: FORMAT,
    speakersPerRoom: SPEAKERS,
    talkingPerRoom: TALKING,
    httpFlushMs: process.env.VOIP_HTTP_FLUSH_MS ?? '20',
    listenersPerRoom: LISTENERS,
    seconds: SECONDS,
  }),
);
pin(process.pid, 1);
for (const rooms of values.rooms.split(',').map(Number)) {
  const server = await startBenchServer({
    VOIP_MAX_ROOM_MEMBERS: '10000',
    VOIP_MAX_ROOMS: '100000',
    VOIP_HTTP_FLUSH_MS: process.env.VOIP_HTTP_FLUSH_MS ?? '20',
  });
  pin(server.pid, 0);
  try {
    console.log(JSON.stringify(await runOnce(server.url, server.pid, rooms)));
  } finally {
    await server.stop();
  }
}
