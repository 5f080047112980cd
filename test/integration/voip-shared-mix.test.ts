import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import {
  dominantFrequency,
  ffmpegDecode,
  powerAt,
  samplesOf,
  ToneSource,
  windowsHearing,
} from '../fixtures/audio.js';
import { LIVE_STREAM_COMPLAINTS, opusinfo } from '../fixtures/opusinfo.js';
import { hasTool } from '../fixtures/system-tools.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser, talk } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';

const haveFfmpeg = hasTool('ffmpeg', 'ffmpeg');
const haveOpusinfo = hasTool('opusinfo', 'opus-tools');

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

/** A listening response read in the background until `stop()`. */
async function openListener(url: string) {
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  expect(res.status).toBe(200);
  const chunks: Buffer[] = [];
  let bytes = 0;
  const reading = (async () => {
    try {
      for await (const c of res.body!) {
        chunks.push(Buffer.from(c));
        bytes += c.length;
      }
    } catch {
      // stopped
    }
  })();
  return {
    headers: res.headers,
    bytes: () => bytes,
    async stop(): Promise<Buffer> {
      abort.abort();
      await reading;
      return Buffer.concat(chunks);
    },
  };
}

/**
 * The body up to its last whole Ogg page: the read was cut at some byte, maybe inside a
 * page a slow reader had only part of.
 */
function wholePages(body: Buffer): Buffer {
  let at = 0;
  for (;;) {
    if (at + 27 > body.length) break;
    const segments = body[at + 26]!;
    if (at + 27 + segments > body.length) break;
    let end = at + 27 + segments;
    for (let i = 0; i < segments; i++) end += body[at + 27 + i]!;
    if (end > body.length) break;
    at = end;
  }
  return body.subarray(0, at);
}

async function counters() {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { encodes: read('chorus_audio_opus_encodes_total'), pages: read('chorus_audio_ogg_pages_total') };
}

describe('VOIP room listeners sharing one mix', () => {
  it('builds one Ogg page per mix per flush for 30 listeners; every stream decodes; nobody hears themself', async () => {
    const a = new KeyUser(t.url);
    const b = new KeyUser(t.url);
    const room = 'shared-mix-room';
    const aUp = await a.uploadSocket('/upRoom', { roomID: room });
    const bUp = await b.uploadSocket('/upRoom', { roomID: room });
    let speaking = true;
    const speak = async (ws: WebSocket, tone: ToneSource) => {
      while (speaking) await talk(ws, (ms) => tone.next(ms), 200);
    };
    const voices = Promise.all([speak(aUp, new ToneSource(440)), speak(bUp, new ToneSource(1000))]);
    const listen = async (u: KeyUser, format: string) =>
      openListener(`${t.url}/joinRoom?${await u.mediaQuery({ roomID: room, format })}`);
    try {
      // The speakers listen too: a on Ogg, b on WAV (each hears a mix without themself).
      const heardByA = await listen(a, 'ogg');
      const heardByB = await listen(b, 'wav');
      // 30 listeners who only listen, joining one after another (each at another point
      // of the shared stream), and one on WAV.
      const listeners: Awaited<ReturnType<typeof openListener>>[] = [];
      for (let i = 0; i < 30; i++) listeners.push(await listen(new KeyUser(t.url), 'ogg'));
      const wavListener = await listen(new KeyUser(t.url), 'wav');
      expect(listeners[0]!.headers.get('content-type')).toBe('audio/ogg');
      // The stream is delimited by the connection, not chunked (one write per page).
      expect(listeners[0]!.headers.get('transfer-encoding')).toBeNull();

      // Over at least 100 ticks from here: 3 mixes encoded a tick (everyone, all but a,
      // all but b), and an Ogg page built only per mix that Ogg listeners hear (everyone,
      // all but a): not one per listener.
      const from = await counters();
      let to = from;
      await eventually(
        async () => (to = await counters()).encodes - from.encodes >= 300,
        30_000,
        '100 ticks of the mixer',
      );
      const encodes = to.encodes - from.encodes;
      const pages = to.pages - from.pages;
      expect(pages).toBeGreaterThan(0);
      expect(pages).toBeLessThanOrEqual(encodes);

      // Enough audio in every stream to check what it carries: 2 s of Ogg is ~8 KB.
      await eventually(
        () => [heardByA, ...listeners].every((l) => l.bytes() > 12_000) && wavListener.bytes() > 3 * 96_000,
        30_000,
        'each listener to have 2 s of audio',
      );
      const [byA, byB, byL, ...rest] = await Promise.all(
        [heardByA, heardByB, wavListener, ...listeners].map((l) => l.stop()),
      );
      speaking = false;
      const wav = (body: Buffer) => samplesOf(body.subarray(44 + 48_000));
      const hb = wav(byB!);
      expect(powerAt(hb, 440)).toBeGreaterThan(100 * powerAt(hb, 1000));
      // Both voices in the pure listeners' streams, each heard in several 100 ms windows.
      const inWav = windowsHearing(wav(byL!));
      expect(inWav.tone440, 'windows of the WAV listener with the 440 Hz voice').toBeGreaterThanOrEqual(3);
      expect(inWav.tone1000, 'windows of the WAV listener with the 1 kHz voice').toBeGreaterThanOrEqual(3);
      if (haveFfmpeg) {
        const ha = await ffmpegDecode(byA!, 'ogg');
        const tailA = ha.subarray(ha.length - 48_000);
        expect(powerAt(tailA, 1000)).toBeGreaterThan(100 * powerAt(tailA, 440));
        // The first, a middle and the last pure listener: each decodes to both voices.
        // The whole stream after its first half second (as the WAV check above): on a loaded
        // box one speaker's upload can stall for a while, so the last second alone may lack it.
        for (const body of [rest[0]!, rest[14]!, rest[29]!]) {
          const heard = await ffmpegDecode(body, 'ogg');
          const most = heard.subarray(24_000);
          const inOgg = windowsHearing(most);
          expect(inOgg.tone440, 'windows of an Ogg listener with the 440 Hz voice').toBeGreaterThanOrEqual(3);
          expect(inOgg.tone1000, 'windows of an Ogg listener with the 1 kHz voice').toBeGreaterThanOrEqual(3);
          expect([440, 1000]).toContain(dominantFrequency(most));
        }
      }
      if (haveOpusinfo) {
        // Each joiner's stream is a whole one: its own headers, page numbers without a gap.
        for (const [i, body] of [rest[0]!, rest[29]!].entries()) {
          const { complaints } = await opusinfo(wholePages(body), `l${i}.opus`);
          expect(complaints, `listener ${i}`).toEqual(LIVE_STREAM_COMPLAINTS);
        }
      }
    } finally {
      speaking = false;
      await voices;
      aUp.close();
      bUp.close();
    }
  }, 180_000);
});
