import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createOpusDecoder } from '../../src/media/audio/audio-codec.js';
import { dominantFrequency, rms, samplesOf, ToneSource } from '../fixtures/audio.js';
import { BeepVoiceClient } from '../fixtures/beep-client.js';
import { FakePermissions } from '../fixtures/fake-permissions.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NatsServerProcess } from '../fixtures/nats-server.js';
import { hasTool } from '../fixtures/system-tools.js';
import { KeyUser, listenUntil, talk } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';

const SURFACES = ['signal', 'bluesky', 'voip', 'beep', 'stream', 'chorus'] as const;
const ENV_FLAG = {
  signal: 'SIGNAL_ENABLED',
  bluesky: 'BLUESKY_ENABLED',
  voip: 'VOIP_ENABLED',
  beep: 'BEEP_ENABLED',
  stream: 'STREAM_ENABLED',
  chorus: 'CHORUS_API_ENABLED',
} as const;
/**
 * Loaded with their first use, not with their surface (#17.2): the WebRTC leg, the first
 * Opus encoder or decoder, the bite, the resampled upload.
 */
const ON_FIRST_USE = [
  'node-datachannel',
  '@evan/opus',
  'protobufjs',
  '@echogarden/speex-resampler-wasm',
  '@noble/curves', // with the first signature in the original's (raw) form
  '@fastify/busboy', // with the first multipart form
] as const;
const LISTENING = /"http":"(http:\/\/[^"]+)".*"msg":"chorus listening"/;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Listed {
  child: ChildProcess;
  url: string;
  list: string;
  exited: Promise<number | null>;
  output: () => string;
}

/**
 * Starts `src/main.ts` (as `npm start` does) with only `on` enabled, recording the modules
 * it loads (test/fixtures/module-list.mjs), and waits for it to listen.
 */
async function startListed(
  on: readonly (typeof SURFACES)[number][],
  extraEnv: Record<string, string> = {},
): Promise<Listed> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-lazy-'));
  dirs.push(dir);
  const list = join(dir, 'modules.txt');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HTTP_PORT: '0',
    BIND_ADDRESS: '127.0.0.1',
    DATA_DIR: join(dir, 'data'),
    WEBRTC_UDP_PORT: String(await freeUdpPort()),
    LOG_PRETTY: 'no',
    MODULE_LIST_FILE: list,
    ...extraEnv,
  };
  for (const s of SURFACES) env[ENV_FLAG[s]] = on.includes(s) ? 'yes' : 'no';
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', './test/fixtures/module-list.mjs', 'src/main.ts', 'serve'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening within 60 s:\n${out}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = LISTENING.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before listening:\n${out}`));
    });
  });
  return { child, url, list, exited, output: () => out };
}

/** The modules the process has loaded so far (it writes them on SIGUSR2). */
async function modulesNow(p: Listed): Promise<string[]> {
  rmSync(p.list, { force: true });
  p.child.kill('SIGUSR2');
  await eventually(() => existsSync(p.list), 10_000, 'the module list');
  return readFileSync(p.list, 'utf8').split('\n').filter(Boolean);
}

/** Stops it by PID with SIGTERM; resolves with all the modules it loaded. */
async function stopListed(p: Listed): Promise<string[]> {
  process.kill(p.child.pid!, 'SIGTERM');
  expect(await p.exited, p.output()).toBe(0);
  return readFileSync(p.list, 'utf8').split('\n').filter(Boolean);
}

const surfaceModules = (modules: readonly string[], surface: string): string[] =>
  modules.filter((m) => m.includes(`/src/api/${surface}/`));
const packageLoaded = (modules: readonly string[], name: string): boolean =>
  modules.some((m) => m.includes(`/node_modules/${name}/`));

describe('disabled surfaces are not loaded', () => {
  it('with only Signal on, no module of the other surfaces (nor their libraries) is loaded', async () => {
    const modules = await stopListed(await startListed(['signal']));
    expect(surfaceModules(modules, 'signal').length).toBeGreaterThan(0);
    for (const off of ['bluesky', 'voip', 'beep', 'stream', 'chorus']) {
      expect(surfaceModules(modules, off), off).toEqual([]);
    }
    // Beep's bites (protobufjs), Beep's and Stream's tokens (jose), VOIP's resampler WASM.
    for (const lib of ['protobufjs', 'jose', '@echogarden/speex-resampler-wasm']) {
      expect(packageLoaded(modules, lib), lib).toBe(false);
    }
    // Loaded on first use only: NATS (a cluster or a sink), YAML (a YAML --config file),
    // Fastify's schema compilers (a route with a JSON schema; Signal's have none).
    for (const lib of ['@nats-io/nats-core', 'yaml', 'ajv', '@fastify/fast-json-stringify-compiler']) {
      expect(packageLoaded(modules, lib), lib).toBe(false);
    }
  }, 120_000);
});

const haveNats = hasTool('nats-server', 'nats-server');

/** The consumers' view of a bite: the checked-in schema, read here on its own. */
const BiteType = protobuf
  .parse(readFileSync(new URL('../../src/api/beep/beep.proto', import.meta.url), 'utf8'))
  .root.lookupType('protobuf.Bite');
interface DecodedBite {
  key: string;
  durationMs: number;
  data: Uint8Array;
  client: { key: string; client: string };
}

/** A bite's Opus packets (each a 16-bit length, then its bytes), decoded to 48 kHz PCM. */
function pcmOfBite(bite: DecodedBite): Int16Array {
  const decoder = createOpusDecoder();
  const b = Buffer.from(bite.data);
  const frames: Int16Array[] = [];
  for (let at = 0; at + 2 <= b.length; at += 2 + b.readUInt16BE(at)) {
    frames.push(decoder.decode(b.subarray(at + 2, at + 2 + b.readUInt16BE(at))));
  }
  const out = new Int16Array(frames.reduce((n, f) => n + f.length, 0));
  frames.reduce((at, f) => (out.set(f, at), at + f.length), 0);
  return out;
}

// #17.2: node-datachannel, protobufjs and the resampler's WASM wait for their first use
// even with every surface on; the first use right after start must still work.
describe.runIf(haveNats)('with every surface on, heavy libraries wait for their first use', () => {
  const nats = new NatsServerProcess();
  const perms = new FakePermissions();
  let p: Listed;
  let nc: NatsConnection;
  const bites: DecodedBite[] = [];
  const claim = (userid: string) => ({ 'X-User-Claim': JSON.stringify({ userid, clientid: 'web' }) });

  beforeAll(async () => {
    await nats.start();
    await perms.start();
    perms.allow('alice', 'standup');
    nc = await connect({ servers: nats.url });
    nc.subscribe('bite', {
      callback: (_err, msg) => {
        bites.push(BiteType.toObject(BiteType.decode(msg.data), { longs: Number }) as DecodedBite);
      },
    });
    await nc.flush();
    p = await startListed(SURFACES, {
      NATS: nats.url,
      PERMISSIONS_HOST: perms.url,
      WEBRTC_BIND_ADDRESS: '127.0.0.1',
    });
  }, 120_000);
  afterAll(async () => {
    if (p) await stopListed(p);
    await nc?.close();
    await perms.stop();
    await nats.stop();
  }, 60_000);

  it('loads each surface at start, but not node-datachannel, Opus, protobufjs or the resampler', async () => {
    const modules = await modulesNow(p);
    for (const s of SURFACES) expect(surfaceModules(modules, s).length, s).toBeGreaterThan(0);
    expect(packageLoaded(modules, 'jose')).toBe(true);
    for (const lib of ON_FIRST_USE) expect(packageLoaded(modules, lib), lib).toBe(false);
    // The pages are served without @fastify/static (glob and its caches at start).
    for (const lib of ['@fastify/static', 'glob', '@fastify/send']) {
      expect(packageLoaded(modules, lib), lib).toBe(false);
    }
  }, 60_000);

  it('the first page request is served as @fastify/static served it (redirect, types, ETag, 304)', async () => {
    expect(packageLoaded(await modulesNow(p), '@fastify/send')).toBe(false);
    const folder = await fetch(`${p.url}/meet?room=x`, { redirect: 'manual' });
    expect(folder.status).toBe(301);
    expect(folder.headers.get('location')).toBe('/meet/?room=x');
    const page = await fetch(`${p.url}/meet/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toBe(readFileSync('web/dist/meet/index.html', 'utf8'));
    const script = await fetch(`${p.url}/meet/main.js`);
    expect(script.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    expect(Buffer.from(await script.arrayBuffer()).equals(readFileSync('web/dist/meet/main.js'))).toBe(true);
    const etag = script.headers.get('etag');
    expect(etag).toMatch(/^W\/"/);
    // node:http, not fetch: fetch adds `Cache-Control: no-cache` to a conditional request.
    const again = await new Promise<number | undefined>((resolve, reject) =>
      get(`${p.url}/meet/main.js`, { headers: { 'If-None-Match': etag! } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).once('error', reject),
    );
    expect(again).toBe(304);
    // Not a page: no route, the server's JSON 404 (and no path escapes web/dist).
    for (const path of ['/nope.js', '/shared/', '/meet/%2e%2e/%2e%2e/package.json']) {
      expect((await fetch(`${p.url}${path}`)).status, path).toBe(404);
    }
    expect(packageLoaded(await modulesNow(p), '@fastify/send')).toBe(true);
  }, 60_000);

  it('refused first uploads (a bad rate, a bad signature) do not load the resampler; a bad first offer harms nothing', async () => {
    // VOIP uploads at 16 kHz that never start: a rate out of range, a wrong signature.
    const u = new KeyUser(p.url);
    const badRate = await fetch(`${p.url}/upRoom?${await u.mediaQuery({ roomID: 'r', rate: '7' })}`, {
      method: 'POST',
      body: Buffer.alloc(640),
    });
    expect(badRate.status).toBe(400);
    await u.getTicket();
    const q = new URLSearchParams({ PKey: u.id, Signature: '3006020101020101', roomID: 'r', rate: '16000' });
    const badSig = await fetch(`${p.url}/upRoom?${q}`, { method: 'POST', body: Buffer.alloc(640) });
    expect(badSig.status).toBeGreaterThanOrEqual(400);
    expect(badSig.status).toBeLessThan(500);
    expect(packageLoaded(await modulesNow(p), '@echogarden/speex-resampler-wasm')).toBe(false);
    // Beep makes its peer when /connect opens (node-datachannel loads then); an offer that
    // is no SDP is refused and closes that socket, and the next test's leg still works.
    const ws = new WebSocket(`${p.url.replace('http', 'ws')}/connect`, { headers: claim('alice') });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.once('open', () => ws.send('v=0\r\nthis is not an offer'));
    expect(await closed).not.toBe(1000);
    expect(p.child.exitCode).toBeNull();
  }, 60_000);

  it('the first WebRTC leg (Beep) carries the speaker, and its first bite is published', async () => {
    expect(packageLoaded(await modulesNow(p), 'protobufjs')).toBe(false);
    const alice = new BeepVoiceClient(440);
    try {
      await alice.connect(`${p.url.replace('http', 'ws')}/connect`, 'bare', claim('alice'));
      const join = await fetch(`${p.url}/join/standup`, { method: 'POST', headers: claim('alice') });
      expect(join.status).toBe(200);
      alice.speak();
      // A whole bite (not the first, which starts mid-second) holds most of its window.
      const whole = (): DecodedBite | undefined => bites.slice(1).find((b) => b.durationMs > 500);
      await eventually(() => !!whole(), 60_000, 'a whole bite');
      const bite = whole()!;
      expect(bite.key).toBe('standup');
      expect(bite.client).toEqual({ key: 'alice', client: 'web' });
      expect(dominantFrequency(pcmOfBite(bite))).toBe(440);
    } finally {
      alice.close();
    }
    const modules = await modulesNow(p);
    expect(packageLoaded(modules, 'node-datachannel')).toBe(true);
    expect(packageLoaded(modules, '@evan/opus')).toBe(true);
    expect(packageLoaded(modules, 'protobufjs')).toBe(true);
  }, 120_000);

  it('the first 16 kHz upload loads the resampler and is heard at its pitch', async () => {
    expect(packageLoaded(await modulesNow(p), '@echogarden/speex-resampler-wasm')).toBe(false);
    const speaker = new KeyUser(p.url);
    const listener = new KeyUser(p.url);
    const room = 'first-upload';
    const up = await speaker.uploadSocket('/upRoom', { roomID: room, rate: '16000' });
    const source = new ToneSource(440, 16_000);
    let talking = true;
    const speaking = (async () => {
      while (talking && up.readyState === up.OPEN) await talk(up, (ms) => source.next(ms), 200);
    })();
    try {
      // 48 kHz mono WAV: wait until the last half second holds the tone, then judge it.
      const lastHalfSecond = (body: Buffer): Int16Array =>
        samplesOf(body.subarray(Math.max(44, body.length - 48_000)));
      const heard = await listenUntil(
        `${p.url}/joinRoom?${await listener.mediaQuery({ roomID: room, format: 'wav' })}`,
        {},
        (body) => body.length >= 44 + 48_000 && rms(lastHalfSecond(body)) > 1000,
        60_000,
      );
      expect(heard.status).toBe(200);
      // Played unresampled, 16 kHz audio would sound three times as high (1320 Hz).
      expect(dominantFrequency(lastHalfSecond(heard.body))).toBe(440);
    } finally {
      talking = false;
      await speaking;
      up.close();
    }
    const modules = await modulesNow(p);
    expect(packageLoaded(modules, '@echogarden/speex-resampler-wasm')).toBe(true);
    // The speaker's and listener's DER signatures are the original's raw form: noble's.
    expect(packageLoaded(modules, '@noble/curves')).toBe(true);
  }, 120_000);
});
