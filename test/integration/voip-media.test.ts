import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import {
  dominantFrequency,
  ffmpegDecode,
  powerAt,
  runTool,
  samplesOf,
  ToneSource,
  windowsHearing,
} from '../fixtures/audio.js';
import { LIVE_STREAM_COMPLAINTS, opusinfo } from '../fixtures/opusinfo.js';
import { hasTool } from '../fixtures/system-tools.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser, listenFor, listenUntil, talk, unhex, type SseClient } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';

const haveFfmpeg = hasTool('ffmpeg', 'ffmpeg');
const haveOpusinfo = hasTool('opusinfo', 'opus-tools');

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

/** A call accepted through the standalone handshake (details in voip-call.test.ts). */
async function acceptedCall(c: KeyUser, e: KeyUser, eEvents: SseClient) {
  await c.getTicket();
  await c.post('/newCall', { Destination: e.id, challenge: 'c1', signature: c.sign(c.ticket) });
  await eEvents.next('newCall');
  await e.post('/answer', { Destination: c.id, challenge: 'c2', signature: e.sign('c1') });
  await c.post('/answer2', { Destination: e.id, challenge: 'c3', signature: c.sign('c2') });
  const res = await e.post('/acceptCall', { From: c.id, signature: e.sign('c3') });
  expect(res.status).toBe(200);
}

/** ffmpeg uploading a sine tone as raw PCM in a streaming POST, as the docs show. */
function ffmpegUpload(url: string, freq: number, seconds: number, rate = 48_000) {
  const child = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=${freq}:sample_rate=${rate}`,
      '-t',
      String(seconds),
      '-f',
      's16le',
      '-ac',
      '1',
      '-ar',
      String(rate),
      '-method',
      'POST',
      url,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr })),
  );
  return { child, done };
}

describe.runIf(haveFfmpeg && haveOpusinfo)('VOIP with real clients', () => {
  it('ffmpeg uploads a tone by POST; opusinfo and ffmpeg decode what /joinCall serves', async () => {
    const c = new KeyUser(t.url);
    const e = new KeyUser(t.url);
    const eEvents = await e.events();
    await acceptedCall(c, e, eEvents);
    // 44.1 kHz declared in the query: the server resamples.
    const upload = ffmpegUpload(
      `${t.url}/upCall?${await c.mediaQuery({ otherID: e.id, rate: '44100' })}`,
      440,
      8,
      44_100,
    );
    try {
      const ogg = await listenFor(
        `${t.url}/joinCall?${await e.mediaQuery({ otherID: c.id, format: 'opus' })}`,
        {},
        2500,
      );
      expect(ogg.type).toBe('audio/ogg');
      const info = await opusinfo(ogg.body, 'call.opus');
      expect(info.text).toContain('Pre-skip: 312');
      expect(info.complaints).toEqual(LIVE_STREAM_COMPLAINTS);
      const decoded = await ffmpegDecode(ogg.body, 'ogg');
      expect(decoded.length).toBeGreaterThan(48_000);
      expect(dominantFrequency(decoded.subarray(decoded.length - 48_000))).toBe(440);

      // WAV, read by ffmpeg itself over HTTP (GET with the form in the query).
      const wavUrl = `${t.url}/joinCall?${await e.mediaQuery({ otherID: c.id, format: 'wav' })}`;
      const { stdout, code, stderr } = await runTool('ffmpeg', [
        '-hide_banner',
        '-loglevel',
        'error',
        '-t',
        '2',
        '-i',
        wavUrl,
        '-f',
        's16le',
        '-ac',
        '1',
        '-ar',
        '48000',
        'pipe:1',
      ]);
      expect(code, stderr).toBe(0);
      const wav = samplesOf(stdout);
      expect(wav.length).toBe(96_000);
      expect(dominantFrequency(wav.subarray(48_000))).toBe(440);
    } finally {
      upload.child.kill('SIGKILL');
      await upload.done;
    }
    // The uploader vanished mid-stream: once the server has noticed, the other side is
    // told, the slot is free, and a new upload is accepted.
    for (;;) {
      const conf = unhex((await eEvents.next('setAudioConf')).data);
      if (conf.from === c.id && conf.in === '0') break;
    }
    const again = ffmpegUpload(`${t.url}/upCall?${await c.mediaQuery({ otherID: e.id })}`, 440, 0.2);
    const result = await again.done;
    expect(result.code, result.stderr).toBe(0);
    eEvents.close();
  });
});

describe('VOIP rooms', () => {
  it('gives each speaker the others and a listener everyone', async () => {
    const a = new KeyUser(t.url);
    const b = new KeyUser(t.url);
    const l = new KeyUser(t.url);
    const watcher = new KeyUser(t.url);
    const [aEvents, watch] = await Promise.all([a.events(), watcher.events()]);
    const room = 'choir-practice';
    const aUp = await a.uploadSocket('/upRoom', { roomID: room });
    const newRoom = unhex((await watch.next('newRoom')).data);
    expect(newRoom).toMatchObject({ name: room, type: 'no type', desc: 'no desc' });
    const id = newRoom.roomid as number;
    expect(id).toBeGreaterThanOrEqual(2);
    const bUp = await b.uploadSocket('/upRoom', { roomID: room });
    expect(unhex((await aEvents.next('setAudioConf')).data)).toMatchObject({
      from: b.id,
      roomid: String(id),
      in: '1',
    });

    const join = async (u: KeyUser) =>
      listenFor(`${t.url}/joinRoom?${await u.mediaQuery({ roomID: room, format: 'wav' })}`, {}, 1500);
    const toneA = new ToneSource(440);
    const toneB = new ToneSource(1000);
    // Both speak for as long as anyone listens: on a busy machine a join can start late,
    // and a fixed talk could end before a listener's window does.
    let listening = true;
    const joins = Promise.all([join(a), join(b), join(l)]).finally(() => (listening = false));
    const speak = async (ws: WebSocket, tone: ToneSource): Promise<void> => {
      while (listening) await talk(ws, (ms) => tone.next(ms), 200);
    };
    const [[heardByA, heardByB, heardByL]] = await Promise.all([joins, speak(aUp, toneA), speak(bUp, toneB)]);
    const tail = (h: { body: Buffer }) => samplesOf(h.body.subarray(44 + 48_000));
    const [ha, hb, hl] = [tail(heardByA), tail(heardByB), tail(heardByL)];
    expect(powerAt(ha, 1000)).toBeGreaterThan(100 * powerAt(ha, 440));
    expect(powerAt(hb, 440)).toBeGreaterThan(100 * powerAt(hb, 1000));
    // The listener hears both (each in some of its ten 100 ms windows: a loaded box can
    // stall one speaker's upload for most of the second).
    const inL = windowsHearing(hl);
    expect(inL.tone440, 'windows of the listener with the 440 Hz voice').toBeGreaterThanOrEqual(2);
    expect(inL.tone1000, 'windows of the listener with the 1 kHz voice').toBeGreaterThanOrEqual(2);

    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/^chorus_voip_rooms [1-9]/m);
    expect(metrics).toMatch(/^chorus_audio_mixers [1-9]/m);
    expect(metrics).toMatch(/^chorus_websockets_open\{surface="voip"\} [2-9]/m);
    // A listener that hung up is found by the next write to it (listen-session.ts): one
    // flush later at most.
    const listed = async () =>
      (
        (await (await fetch(`${t.url}/listRoom`)).json()) as { id: number; name: string; count: number }[]
      ).find((r) => r.id === id);
    const members = async () =>
      JSON.stringify(await (await fetch(`${t.url}/listMembers?roomID=${id}`)).json());
    await eventually(
      async () => (await listed())?.count === 2 && !(await members()).includes('"hds":1'),
      30_000,
      'the listeners gone',
    );
    expect(await listed()).toMatchObject({ name: room, count: 2 });
    expect(JSON.parse(await members())).toEqual([
      { pubkey: a.id, mic: 1, hds: 0 },
      { pubkey: b.id, mic: 1, hds: 0 },
    ]);
    aUp.close();
    bUp.close();
    aEvents.close();
    watch.close();
    // Empty rooms go away.
    await eventually(
      async () =>
        !((await (await fetch(`${t.url}/listRoom`)).json()) as { id: number }[]).some((r) => r.id === id),
      10_000,
      'the empty room to go away',
    );
    expect((await fetch(`${t.url}/listMembers?roomID=${id}`)).status).toBe(404);
  });

  it('starts a late Ogg listener with recent audio at once', async () => {
    const a = new KeyUser(t.url);
    const l = new KeyUser(t.url);
    const room = 'late-joiners';
    const aUp = await a.uploadSocket('/upRoom', { roomID: room });
    const toneA = new ToneSource(440);
    await talk(aUp, (ms) => toneA.next(ms), 1500);
    // The speaker says nothing more: the tone a listener hears from here on can only be
    // the backlog, and it must come first (not after some live audio). No timing: what
    // arrived shows it.
    const heard = await listenUntil(
      `${t.url}/joinRoom?${await l.mediaQuery({ roomID: room })}`,
      {},
      (body) => body.length > 4000,
    );
    expect(heard.body.length).toBeGreaterThan(4000);
    if (haveFfmpeg) {
      const decoded = await ffmpegDecode(heard.body, 'ogg');
      expect(decoded.length).toBeGreaterThan(48_000);
      // The first second heard is the tone said before the listener came.
      expect(dominantFrequency(decoded.subarray(0, 48_000))).toBe(440);
    }
    aUp.close();
  });

  it.runIf(hasTool('curl', 'curl'))(
    'takes a room upload from `curl -T -` (PUT, streamed stdin)',
    async () => {
      const a = new KeyUser(t.url);
      const l = new KeyUser(t.url);
      const room = 'curl-room';
      const listening = listenFor(
        `${t.url}/joinRoom?${await l.mediaQuery({ roomID: room, format: 'wav' })}`,
        {},
        1500,
      );
      const url = `${t.url}/upRoom?${await a.mediaQuery({ roomID: room, rate: '16000' })}`;
      const curl = await runTool(
        'curl',
        ['-sS', '--fail', '-T', '-', url],
        new ToneSource(440, 16_000).next(1000),
      );
      expect(curl.code, curl.stderr).toBe(0);
      const heard = samplesOf((await listening).body.subarray(44));
      expect(dominantFrequency(heard)).toBe(440);
    },
  );

  it('frees a speaker whose connection drops without a close frame', async () => {
    const a = new KeyUser(t.url);
    const b = new KeyUser(t.url);
    const bEvents = await b.events();
    const room = 'abrupt-room';
    const bUp = await b.uploadSocket('/upRoom', { roomID: room });
    const aUp = await a.uploadSocket('/upRoom', { roomID: room });
    expect(unhex((await bEvents.next('setAudioConf')).data)).toMatchObject({ from: a.id, in: '1' });
    aUp.terminate();
    expect(unhex((await bEvents.next('setAudioConf')).data)).toMatchObject({ from: a.id, in: '0', out: '0' });
    const id = ((await (await fetch(`${t.url}/listRoom`)).json()) as { id: number; name: string }[]).find(
      (r) => r.name === room,
    )!.id;
    expect(await (await fetch(`${t.url}/listMembers?roomID=${id}`)).json()).toEqual([
      { pubkey: b.id, mic: 1, hds: 0 },
    ]);
    bUp.close();
    bEvents.close();
  });

  it('refuses bad room names, a second upload, and the wrong format', async () => {
    const a = new KeyUser(t.url);
    const short = await fetch(`${t.url}/joinRoom?${await a.mediaQuery({ roomID: 'ab' })}`);
    expect([short.status, await short.text()]).toEqual([400, 'bad roomName\n']);
    const up = await a.uploadSocket('/upRoom', { roomID: 'solo-room' });
    const second = await fetch(`${t.url}/upRoom?${await a.mediaQuery({ roomID: 'solo-room' })}`, {
      method: 'POST',
      body: '',
    });
    expect([second.status, await second.text()]).toEqual([409, 'user already connected\n']);
    const fmt = await fetch(
      `${t.url}/joinRoom?${await a.mediaQuery({ roomID: 'solo-room', format: 'flac' })}`,
    );
    expect(fmt.status).toBe(400);
    // An oversize upload frame closes the socket with 1009; the server keeps serving.
    const closed = new Promise<number>((resolve) => up.once('close', (code) => resolve(code)));
    up.send(Buffer.alloc(300 * 1024));
    expect(await closed).toBe(1009);
    expect((await fetch(`${t.url}/listRoom`)).status).toBe(200);
  });
});

describe('VOIP with HTTP listeners flushed every 100 ms', () => {
  it('writes 100 ms chunks that still decode to the tone', async () => {
    const s = await startTestServer({ voip: { httpFlushMs: 100, oggBacklogMs: 0 } });
    try {
      const a = new KeyUser(s.url);
      const l = new KeyUser(s.url);
      const aUp = await a.uploadSocket('/upRoom', { roomID: 'slow-flush' });
      const chunks: number[] = [];
      const res = await fetch(
        `${s.url}/joinRoom?${await l.mediaQuery({ roomID: 'slow-flush', format: 'wav' })}`,
      );
      const reading = (async () => {
        const parts: Buffer[] = [];
        for await (const c of res.body!) {
          chunks.push(c.length);
          parts.push(Buffer.from(c));
          if (parts.reduce((n, p) => n + p.length, 0) >= 44 + 96_000) break;
        }
        return Buffer.concat(parts);
      })();
      const tone = new ToneSource(440);
      await talk(aUp, (ms) => tone.next(ms), 1500);
      const body = await reading;
      // One second of audio arrives in about ten writes, not fifty (reads may merge
      // writes, never split them into more on loopback at this size).
      expect(chunks.length).toBeLessThanOrEqual(20);
      expect(dominantFrequency(samplesOf(body.subarray(44 + 48_000)))).toBe(440);
      aUp.close();
    } finally {
      await s.close();
    }
  });
});
