// What a Beep speaker should cross nodes as: its Opus packets as received (the receiving
// node decodes them into its mix) or decoded 20 ms PCM frames (the receiving node only
// copies them in). Both go through a real nats-server, publisher and subscriber on their
// own connections, receiver feeding a PcmInput as the mixer's input would be fed.
// Reports, per relayed packet: bytes, CPU in this process (publish + receive + decode or
// copy), CPU in nats-server, and the Opus decode alone; then the hop's latency
// (publish to receive) at a steady pace of `--speakers` speakers, 50 packets/s each.
//
//   npx tsx bench/beep/relay-format.ts [--packets 40000] [--rounds 3] [--speakers 20] [--seconds 5]
import { connect } from '@nats-io/transport-node';
import { cpuSeconds } from '../lib/server-process.js';
import { NatsServerProcess } from '../../test/fixtures/nats-server.js';
import { createOpusDecoder, createOpusEncoder, DEFAULT_OPUS } from '../../src/media/audio/audio-codec.js';
import { FRAME_SAMPLES, frameBytes } from '../../src/media/audio/pcm-frame.js';
import { PcmInput } from '../../src/media/audio/pcm-input.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const PACKETS = arg('packets', 40_000);
const ROUNDS = arg('rounds', 3);
const SPEAKERS = arg('speakers', 20);
const SECONDS = arg('seconds', 5);

/** One second of a speaker: 50 Opus packets of a voice-like tone sweep, and the same frames as PCM. */
function speech(): { opus: Uint8Array[]; pcm: Buffer[] } {
  const enc = createOpusEncoder(DEFAULT_OPUS);
  const opus: Uint8Array[] = [];
  const pcm: Buffer[] = [];
  let t = 0;
  for (let f = 0; f < 50; f++) {
    const frame = new Int16Array(FRAME_SAMPLES);
    for (let i = 0; i < FRAME_SAMPLES; i++, t++) {
      const hz = 180 + 120 * Math.sin((2 * Math.PI * t) / 48_000);
      frame[i] = Math.round(6000 * Math.sin((2 * Math.PI * hz * t) / 48_000) + 1500 * Math.sin(t / 3.1));
    }
    opus.push(Uint8Array.from(enc.encode(frame)));
    pcm.push(Buffer.from(frameBytes(frame)));
  }
  return { opus, pcm };
}

async function run(
  url: string,
  natsPid: number,
  payloads: Uint8Array[],
  receive: (data: Uint8Array) => void,
): Promise<{ node: number; nats: number; wallMs: number }> {
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  let got = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  sub.subscribe('chorus.beep.conv.bench.audio.node-a.*', {
    callback: (_e, m) => {
      receive(m.data);
      if (++got === PACKETS) done();
    },
  });
  await sub.flush();
  const n0 = process.cpuUsage();
  const s0 = cpuSeconds(natsPid);
  const t0 = performance.now();
  for (let i = 0; i < PACKETS; i++) {
    pub.publish('chorus.beep.conv.bench.audio.node-a.YWxpY2UAd2Vi', payloads[i % payloads.length]);
    // Keep the client's outbound buffer small, as a steady 50 packets/s a speaker would.
    if (i % 500 === 499) await pub.flush();
  }
  await pub.flush();
  await finished;
  const wallMs = performance.now() - t0;
  const n = process.cpuUsage(n0);
  const nats = cpuSeconds(natsPid) - s0;
  await pub.close();
  await sub.close();
  return { node: (n.user + n.system) / 1e6, nats, wallMs };
}

/** Publish-to-receive times at a steady pace, ms: `SPEAKERS` packets every 20 ms. */
async function latency(url: string, payload: Uint8Array): Promise<{ p50: number; p99: number; max: number }> {
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  const sentAt = new Map<number, number>();
  const times: number[] = [];
  sub.subscribe('chorus.beep.conv.bench.audio.node-a.*', {
    callback: (_e, m) => {
      const at = sentAt.get(Buffer.from(m.data.buffer, m.data.byteOffset, 4).readUInt32BE(0));
      if (at !== undefined) times.push(performance.now() - at);
    },
  });
  await sub.flush();
  let id = 0;
  const ticks = (SECONDS * 1000) / 20;
  for (let t = 0; t < ticks; t++) {
    for (let s = 0; s < SPEAKERS; s++) {
      const data = Buffer.from(payload);
      data.writeUInt32BE(++id, 0);
      sentAt.set(id, performance.now());
      pub.publish(`chorus.beep.conv.bench.audio.node-a.s${s}`, data);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await pub.flush();
  const deadline = Date.now() + 5000;
  while (times.length < id && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await pub.close();
  await sub.close();
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: times[times.length - 1]! };
}

async function main(): Promise<void> {
  const server = new NatsServerProcess();
  await server.start();
  const { opus, pcm } = speech();
  const opusBytes = opus.reduce((s, p) => s + p.length, 0) / opus.length;
  try {
    // The decode alone (what the Opus choice adds on each receiving node).
    const dec = createOpusDecoder();
    const d0 = process.cpuUsage();
    for (let i = 0; i < PACKETS; i++) dec.decode(opus[i % opus.length]!);
    const d = process.cpuUsage(d0);
    const decodeUs = ((d.user + d.system) / PACKETS).toFixed(1);
    console.log(
      `packets ${PACKETS} x ${ROUNDS} rounds; opus ${opusBytes.toFixed(0)} B, pcm ${pcm[0]!.length} B`,
    );
    console.log(`opus decode alone: ${decodeUs} us/packet`);
    for (let r = 0; r < ROUNDS; r++) {
      // Alternated in each round, so a change in the machine's load hits both alike.
      for (const mode of ['opus', 'pcm'] as const) {
        const input = new PcmInput(undefined, 300);
        const decoder = createOpusDecoder();
        const sink = new Int16Array(FRAME_SAMPLES);
        const receive =
          mode === 'opus'
            ? (data: Uint8Array) => {
                input.write(frameBytes(decoder.decode(data)));
                input.readFrame(sink);
              }
            : (data: Uint8Array) => {
                input.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
                input.readFrame(sink);
              };
        const res = await run(server.url, server.pid, mode === 'opus' ? opus : pcm, receive);
        const us = (s: number) => ((s * 1e6) / PACKETS).toFixed(1);
        console.log(
          `round ${r + 1} ${mode}: node ${us(res.node)} us/packet, nats-server ${us(res.nats)} us/packet, ` +
            `total ${us(res.node + res.nats)} us/packet, ${(PACKETS / (res.wallMs / 1000)).toFixed(0)} packets/s`,
        );
      }
    }
    for (const mode of ['opus', 'pcm'] as const) {
      const l = await latency(server.url, (mode === 'opus' ? opus : pcm)[0]!);
      console.log(
        `latency ${mode}, ${SPEAKERS} speakers x 50 packets/s: p50 ${l.p50.toFixed(2)} ms, ` +
          `p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(2)} ms`,
      );
    }
  } finally {
    await server.dispose();
  }
}

await main();
