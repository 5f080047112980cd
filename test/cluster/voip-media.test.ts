import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ffmpegDecode, powerAt, ToneSource } from '../fixtures/audio.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { hasTool } from '../fixtures/system-tools.js';
import { KeyUser, listenUntil, talk } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';

// VOIP media across three real Chorus processes and a nats-server: a room's mixer runs
// on one node, uploads on the others reach it, and each other node receives the mixes
// its listeners need once per tick, whatever their number. Decoded by real ffmpeg.

let cluster: Cluster;
let nc: NatsConnection;
const url = (i: number): string => cluster.nodes[i]!.url;
const sockets: WebSocket[] = [];

/** Seconds of audio in an Ogg/Opus stream so far: the last page's granule position. */
function oggSeconds(body: Buffer): number {
  const at = body.lastIndexOf('OggS');
  if (at < 0 || body.length < at + 14) return 0;
  return Number(body.readBigInt64LE(at + 6)) / 48_000;
}

const wavSeconds = (body: Buffer): number => Math.max(0, body.length - 44) / 96_000;

/** A member's upload socket on node `i`. */
async function upload(u: KeyUser, i: number, room: string): Promise<WebSocket> {
  const ws = await u.at(url(i)).uploadSocket('/upRoom', { roomID: room });
  sockets.push(ws);
  return ws;
}

/** Streams a tone on `ws` until `until()` says stop. */
async function speak(ws: WebSocket, freq: number, until: () => boolean): Promise<void> {
  const tone = new ToneSource(freq);
  while (!until() && ws.readyState === ws.OPEN) await talk(ws, (ms) => tone.next(ms), 200);
}

/** What `u` hears of `room` on node `i` once `seconds` of it arrived, decoded to PCM. */
async function hear(u: KeyUser, i: number, room: string, format: 'ogg' | 'wav', seconds: number) {
  const q = await u.at(url(i)).mediaQuery({ roomID: room, format });
  const enough = (b: Buffer) => (format === 'ogg' ? oggSeconds(b) : wavSeconds(b)) >= seconds;
  const heard = await listenUntil(`${url(i)}/joinRoom?${q}`, { method: 'POST' }, enough, 60_000);
  expect(heard.status, heard.text).toBe(200);
  const pcm =
    format === 'ogg' ? await ffmpegDecode(heard.body, 'ogg') : await ffmpegDecode(heard.body, 'wav');
  // The last 1.5 s: everyone is talking by then.
  return pcm.subarray(Math.max(0, pcm.length - 72_000));
}

/** A node's metric (summed over label sets). */
async function metric(i: number, name: string): Promise<number> {
  return (await metrics(i))(name);
}

/** One scrape of a node's metrics, read by name (figures of one instant). */
async function metrics(i: number): Promise<(name: string) => number> {
  const text = await (await fetch(`${url(i)}/metrics`)).text();
  return (name) => sumOf(text, name);
}

function sumOf(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m?.[1] === name) sum += Number(m[3]);
  }
  return sum;
}

/** A raw Opus WebSocket listener of `room` on node `i`, counting the packets it gets. */
async function wsListener(
  u: KeyUser,
  i: number,
  room: string,
): Promise<{ ws: WebSocket; packets: () => number }> {
  const q = await u.at(url(i)).mediaQuery({ roomID: room });
  const ws = new WebSocket(`${url(i).replace(/^http/, 'ws')}/joinRoom?${q}`);
  sockets.push(ws);
  let packets = 0;
  ws.on('message', (_d, binary) => {
    if (binary) packets++;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, packets: () => packets };
}

const run = hasTool('nats-server', 'nats-server') && hasTool('ffmpeg', 'ffmpeg');

describe.skipIf(!run)('VOIP media across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    nc = await natsConnect({ servers: cluster.nats.url });
  }, 60_000);

  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await nc?.close();
    await cluster?.stop();
  });

  it('mixes a room on one node for uploaders and listeners on all three; nobody hears themself', async () => {
    const room = `choir-${Date.now()}`;
    const [a, b, c, l] = [new KeyUser(url(0)), new KeyUser(url(0)), new KeyUser(url(0)), new KeyUser(url(0))];
    // a opens the room on node 0 (its mixer's node); b uploads on node 1, c on node 2.
    const aUp = await upload(a, 0, room);
    const bUp = await upload(b, 1, room);
    const cUp = await upload(c, 2, room);
    let done = false;
    const talking = Promise.all([
      speak(aUp, 440, () => done),
      speak(bUp, 700, () => done),
      speak(cUp, 1000, () => done),
    ]);
    try {
      // a listens on node 1, b on node 2 (uploads on 1, listens on 2), c on node 0, and
      // l, who says nothing, on node 1 with WAV.
      const [ha, hb, hc, hl] = await Promise.all([
        hear(a, 1, room, 'ogg', 3),
        hear(b, 2, room, 'wav', 3),
        hear(c, 0, room, 'ogg', 3),
        hear(l, 1, room, 'wav', 3),
      ]);
      const tones = { a: 440, b: 700, c: 1000 };
      const checks: [Int16Array, keyof typeof tones | undefined][] = [
        [ha, 'a'],
        [hb, 'b'],
        [hc, 'c'],
        [hl, undefined],
      ];
      for (const [heard, self] of checks) {
        for (const [who, freq] of Object.entries(tones)) {
          const p = powerAt(heard, freq);
          if (who === self) {
            // Not themself: far below each of the others.
            for (const [other, f2] of Object.entries(tones))
              if (other !== who) expect(p, `${self} hears itself`).toBeLessThan(0.01 * powerAt(heard, f2));
          } else {
            expect(p, `${self ?? 'l'} hears ${who}`).toBeGreaterThan(
              0.1 * Math.max(...Object.values(tones).map((f) => powerAt(heard, f))),
            );
          }
        }
      }
      // Listed once, with every member, on any node.
      const members = (await (
        await fetch(`${url(2)}/listMembers?roomID=${encodeURIComponent(room)}`)
      ).json()) as {
        pubkey: string;
        mic: number;
      }[];
      expect(new Set(members.filter((m) => m.mic === 1).map((m) => m.pubkey))).toEqual(
        new Set([a.id, b.id, c.id]),
      );
    } finally {
      done = true;
      await talking;
    }
    // Uploads relayed to node 0 from 1 and 2; mixes relayed from node 0.
    expect(await metric(1, 'chorus_voip_relay_upload_frames_sent_total')).toBeGreaterThan(0);
    expect(await metric(0, 'chorus_voip_relay_upload_frames_received_total')).toBeGreaterThan(0);
    expect(await metric(0, 'chorus_voip_relay_bundles_sent_total')).toBeGreaterThan(0);
    // Every bundle and frame read back whole (several ticks published at once, when the
    // clock catches up, must not share one buffer).
    for (const i of [0, 1, 2]) expect(await metric(i, 'chorus_voip_relay_dropped_total')).toBe(0);
    for (const ws of [aUp, bUp, cUp]) ws.close();
  }, 120_000);

  it('sends a node one stream per mix, not one per listener', async () => {
    const room = `hall-${Date.now()}`;
    const s = new KeyUser(url(0));
    const sUp = await upload(s, 0, room);
    let done = false;
    const talking = speak(sUp, 440, () => done);
    try {
      // Four listeners on node 1, none of them speaking: they all hear the full mix.
      const ears = await Promise.all([1, 2, 3].map(() => wsListener(new KeyUser(url(0)), 1, room)));
      const wav = hear(new KeyUser(url(0)), 1, room, 'wav', 6);
      // And two Ogg listeners there, sharing the full mix's pages.
      const oggs = Promise.all([1, 2].map(() => hear(new KeyUser(url(0)), 1, room, 'ogg', 6)));
      await eventually(async () => ears.every((e) => e.packets() > 5), 20_000, 'every listener hears');
      // The counters are the node's: the earlier test's room must be gone first.
      await eventually(async () => (await metric(0, 'chorus_voip_rooms')) === 1, 20_000, 'one room left');
      const node1 = await metrics(1);
      const [bundles0, pages0] = [
        node1('chorus_voip_relay_bundles_received_total'),
        node1('chorus_audio_ogg_pages_total'),
      ];
      // Bundles and mixes from one scrape each time: both counters of the same instant.
      const owner0 = await metrics(0);
      const [sent0, mixes0] = [
        owner0('chorus_voip_relay_bundles_sent_total'),
        owner0('chorus_voip_relay_mixes_sent_total'),
      ];
      const start = ears[0]!.packets();
      await eventually(async () => ears[0]!.packets() - start >= 100, 30_000, '100 more packets');
      const heard = ears[0]!.packets() - start;
      const node1After = await metrics(1);
      const bundles = node1After('chorus_voip_relay_bundles_received_total') - bundles0;
      // One page per flush (VOIP_HTTP_FLUSH_MS 20: a tick) for both Ogg listeners: a feed
      // per stream would build two.
      const pages = node1After('chorus_audio_ogg_pages_total') - pages0;
      // Fewer pages than ticks is fine: on a loaded box a late flush carries two ticks.
      expect(pages).toBeGreaterThan(bundles * 0.3);
      expect(pages).toBeLessThan(bundles * 1.3);
      const owner1 = await metrics(0);
      const sent = owner1('chorus_voip_relay_bundles_sent_total') - sent0;
      const mixes = owner1('chorus_voip_relay_mixes_sent_total') - mixes0;
      // One bundle a tick reached node 1 while one listener got a packet a tick: with a
      // stream per listener it would be four times as many.
      expect(bundles).toBeGreaterThanOrEqual(heard * 0.8);
      expect(bundles).toBeLessThan(heard * 1.5);
      // The owner sent one bundle a tick for the whole cluster, each with one mix (the
      // full mix all four hear), encoded once.
      expect(sent).toBeLessThan(heard * 1.5);
      expect(mixes).toBe(sent);
      for (const pcm of [await wav, ...(await oggs)])
        expect(powerAt(pcm, 440)).toBeGreaterThan(100 * powerAt(pcm, 1000));
      for (const e of ears) e.ws.close();
    } finally {
      done = true;
      await talking;
      sUp.close();
    }
  }, 120_000);

  it('drops malformed relay messages; the room goes on', async () => {
    const room = `junk-${Date.now()}`;
    const s = new KeyUser(url(0));
    const sUp = await upload(s, 0, room);
    let done = false;
    const talking = speak(sUp, 440, () => done);
    // Learn the room's relay subjects from its bundles to node 1.
    const seen = nc.subscribe('chorus.voip.room.*.*.mix', { max: 1 });
    try {
      const ear = await wsListener(new KeyUser(url(0)), 1, room);
      let mixSubject = '';
      for await (const m of seen) mixSubject = m.subject;
      const base = mixSubject.slice(0, -'.mix'.length);
      const dropped0 = await metric(0, 'chorus_voip_relay_dropped_total');
      const dropped1 = await metric(1, 'chorus_voip_relay_dropped_total');
      // To node 1: bundles that lie about their lengths, are empty, or are not bundles.
      for (const junk of [
        Buffer.from([1, 0, 0, 0, 1, 0xff, 0xff, 1]),
        Buffer.alloc(0),
        Buffer.from('{"x":1}'),
      ])
        nc.publish(`${base}.mix`, junk);
      // To the owner: a frame of the wrong size, a frame for nobody, a bad request, a
      // bad notice for node 1.
      nc.publish(`${base}.up.${s.id}`, Buffer.alloc(100));
      nc.publish(`${base}.up.nobody`, Buffer.alloc(1920));
      const answer = await nc.request(`${base}.ctl`, Buffer.from('not json'), { timeout: 5000 });
      expect(JSON.parse(answer.string())).toEqual({ outcome: 'gone' });
      const odd = await nc.request(
        `${base}.ctl`,
        Buffer.from(
          JSON.stringify({ op: 'release', member: 'x', slot: 'mic', node: { id: 'n', instance: 'i' } }),
        ),
        { timeout: 5000 },
      );
      expect(JSON.parse(odd.string())).toEqual({ outcome: 'ok' });
      nc.publish(`${base}.node.node-1`, Buffer.from('{"op":"close"}'));
      await eventually(
        async () => (await metric(1, 'chorus_voip_relay_dropped_total')) >= dropped1 + 4,
        15_000,
        'node 1 drops the bad bundles and notice',
      );
      await eventually(
        async () => (await metric(0, 'chorus_voip_relay_dropped_total')) >= dropped0 + 3,
        15_000,
        'the owner drops the bad frames and request',
      );
      // The listener still hears, and both nodes still answer.
      const before = ear.packets();
      await eventually(async () => ear.packets() > before + 50, 20_000, 'the listener goes on');
      expect(ear.ws.readyState).toBe(WebSocket.OPEN);
      ear.ws.close();
    } finally {
      done = true;
      await talking;
      sUp.close();
    }
  }, 120_000);
});
