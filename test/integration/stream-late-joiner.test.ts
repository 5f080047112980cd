import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasTool } from '../fixtures/system-tools.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

// issue #13.6: a receiver that joins a WebM or MPEG-TS stream late starts at the latest
// keyframe (after the stream's header), not at the publisher's first byte. The streams
// are made by ffmpeg writing to a pipe (live-style: WebM with an unknown-size Segment),
// published over the Stream WebSocket in chunks that ignore the container's structure,
// and what the late joiner receives is decoded with ffmpeg and read with ffprobe.

const run = promisify(execFile);
const haveFfmpeg = hasTool('ffmpeg', 'ffmpeg');
const GOP_SECONDS = 1; // -g 25 at 25 fps
const SECONDS = 8;
const JOIN_AT = 0.7; // the joiner arrives when this share of the stream has been published

interface Sample {
  name: string;
  args: string[];
}

const source = [
  '-f', 'lavfi', '-i', `testsrc=size=320x240:rate=25:duration=${SECONDS}`,
  '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`,
]; // prettier-ignore
const samples: Sample[] = [
  {
    name: 'webm (VP8 + Opus)',
    args: [...source, '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k', '-g', '25',
      '-c:a', 'libopus', '-f', 'webm'], // prettier-ignore
  },
  {
    name: 'mpegts (H.264 + AAC)',
    args: [...source, '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-b:v', '400k', '-g', '25',
      '-c:a', 'aac', '-f', 'mpegts'], // prettier-ignore
  },
  {
    // What the original's users publish for jsmpeg.
    name: 'mpegts (MPEG-1 video + MP2)',
    args: [
      ...source,
      '-c:v',
      'mpeg1video',
      '-b:v',
      '800k',
      '-bf',
      '0',
      '-g',
      '25',
      '-c:a',
      'mp2',
      '-f',
      'mpegts',
    ],
  },
];

async function ffmpegToBuffer(args: string[]): Promise<Buffer> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', ...args, 'pipe:1'], {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
  });
  return stdout;
}

/** Video packets' stream positions and times, from ffprobe. */
async function videoPackets(file: string): Promise<Array<{ pos: number; pts: number }>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries',
    'packet=pts_time,pos', '-of', 'csv=p=0', file]); // prettier-ignore
  return stdout
    .trim()
    .split('\n')
    .map((line) => line.split(','))
    .map(([pts, pos]) => ({ pts: Number(pts), pos: Number(pos) }))
    .filter((p) => Number.isFinite(p.pts) && Number.isFinite(p.pos));
}

async function firstVideoFrame(file: string): Promise<{ key: boolean; pictType: string; pts: number }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+#1',
    '-show_entries', 'frame=key_frame,pict_type,pts_time', '-of', 'csv=p=0', file]); // prettier-ignore
  const [key, pts, pictType] = stdout.trim().split('\n')[0]!.split(',');
  return { key: key === '1', pictType: pictType ?? '', pts: Number(pts) };
}

async function decodeErrors(file: string): Promise<string> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
  return stderr.trim();
}

/** Chunk sizes that fall anywhere in the container's structure (deterministic). */
function* chunks(data: Buffer, from: number, to: number): Generator<Buffer> {
  let seed = 7;
  for (let p = from; p < to;) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const n = Math.min(500 + (seed % 7000), to - p);
    yield data.subarray(p, p + n);
    p += n;
  }
}

let t: TestServer;
let dir: string;
const streams = new Map<string, Buffer>();

beforeAll(async () => {
  if (!haveFfmpeg) return;
  dir = mkdtempSync(join(tmpdir(), 'chorus-late-'));
  await Promise.all(samples.map(async (s) => streams.set(s.name, await ffmpegToBuffer(s.args))));
  t = await startTestServer({ stream: { maxIpConcurrentConnections: 100 } });
}, 120_000);

afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function stats(server: TestServer, channel: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${server.url}/stream-stats/${channel}`)).json()) as Record<string, unknown>;
}

/**
 * Publishes the stream up to `JOIN_AT`, joins, publishes the rest, ends; returns what the
 * joiner received (saved to a file) and the publisher's position when it joined.
 */
async function joinLate(
  server: TestServer,
  channel: string,
  data: Buffer,
  file: string,
): Promise<{ received: string; source: string; joinPos: number }> {
  const pub = await TestSocket.open(`${server.wsUrl}/${channel}/k/publish`);
  const joinPos = Math.floor(data.length * JOIN_AT);
  let sent = 0;
  for (const c of chunks(data, 0, joinPos)) {
    pub.ws.send(c);
    // Real-time-ish: the server takes each few chunks before more come.
    if (++sent % 8 === 0) await eventually(async () => (await stats(server, channel)).chunksIn === sent);
  }
  await eventually(async () => (await stats(server, channel)).chunksIn === sent, 10_000);
  const late = await TestSocket.open(`${server.wsUrl}/${channel}/k/receive`);
  for (const c of chunks(data, joinPos, data.length)) pub.ws.send(c);
  pub.close();
  expect(await late.closed).toEqual({ code: 1000, reason: 'stream ended' });
  const received = join(dir, `${file}-late`);
  const sourceFile = join(dir, `${file}-source`);
  writeFileSync(received, Buffer.concat(late.binaries));
  writeFileSync(sourceFile, data);
  return { received, source: sourceFile, joinPos };
}

describe.skipIf(!haveFfmpeg)('a late joiner of a WebM or MPEG-TS stream', () => {
  for (const [i, sample] of samples.entries()) {
    it(`${sample.name}: starts at a keyframe within one GOP of live, and decodes cleanly`, async () => {
      const data = streams.get(sample.name)!;
      const channel = `late${i}`;
      const { received, source, joinPos } = await joinLate(t, channel, data, `s${i}`);

      const packets = await videoPackets(source);
      // The publisher's position: the last video packet wholly sent before the joiner came.
      const live = Math.max(...packets.filter((p) => p.pos < joinPos - 1000).map((p) => p.pts));
      const start = Math.min(...packets.map((p) => p.pts));
      const first = await firstVideoFrame(received);
      expect(first.key, `first frame ${JSON.stringify(first)}`).toBe(true);
      expect(first.pictType).toBe('I');
      // Near live: at most one GOP (plus a frame) behind the publisher, never ahead.
      expect(first.pts).toBeGreaterThan(live - GOP_SECONDS - 0.1);
      expect(first.pts).toBeLessThanOrEqual(live + 0.05);
      expect(first.pts).toBeGreaterThan(start + 1);
      expect(await decodeErrors(received)).toBe('');
    }, 60_000);
  }

  it('reports the container in the cache and replays far less than the whole stream', async () => {
    const data = streams.get(samples[0]!.name)!;
    const pub = await TestSocket.open(`${t.wsUrl}/sizes/k/publish`);
    let sent = 0;
    for (const c of chunks(data, 0, data.length)) {
      pub.ws.send(c);
      sent++;
    }
    await eventually(async () => (await stats(t, 'sizes')).chunksIn === sent, 10_000);
    const s = await stats(t, 'sizes');
    // One GOP of an 8 s stream with a 1 s GOP, and the header.
    expect(s.cacheBytes as number).toBeLessThan(data.length / 3);
    expect(s.cacheBytes as number).toBeGreaterThan(0);
    pub.close();
  });

  it('STREAM_CACHE_MODE=all keeps the original behaviour: a joiner gets everything since publishing began', async () => {
    const all = await startTestServer({ stream: { cacheMode: 'all' } });
    try {
      const data = streams.get(samples[1]!.name)!;
      const { received, joinPos } = await joinLate(all, 'whole', data, 'all');
      expect(joinPos).toBeGreaterThan(0);
      expect(readFileSync(received).equals(data)).toBe(true);
    } finally {
      await all.close();
    }
  }, 60_000);

  it('a stream that only looks like a container (bad bytes after the first) is cached whole', async () => {
    const pub = await TestSocket.open(`${t.wsUrl}/fake/k/publish`);
    // The EBML and TS first bytes, then garbage: the index gives up, nothing is lost.
    const fakes = [Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x00, 0x00]), Buffer.alloc(300, 0x33)];
    for (const f of fakes) pub.ws.send(f);
    await eventually(async () => (await stats(t, 'fake')).chunksIn === 2);
    const r = await TestSocket.open(`${t.wsUrl}/fake/k/receive`);
    const got = await r.binaryCount(2);
    expect(Buffer.concat(got).equals(Buffer.concat(fakes))).toBe(true);
    pub.close();
    const pub2 = await eventually(async () => (await stats(t, 'fake')).publishing === false).then(() =>
      TestSocket.open(`${t.wsUrl}/fake/k/publish`),
    );
    const ts = Buffer.alloc(188 * 3, 0x47);
    ts[188 * 2] = 0x00; // lost sync in the third packet
    pub2.ws.send(ts);
    await eventually(async () => (await stats(t, 'fake')).chunksIn === 1);
    const r2 = await TestSocket.open(`${t.wsUrl}/fake/k/receive`);
    expect((await r2.binaryCount(1))[0]!.equals(ts)).toBe(true);
    pub2.close();
  });
});
