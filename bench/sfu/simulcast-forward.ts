/**
 * The JavaScript cost of forwarding with simulcast against one encoding, in one process
 * and one run (rounds interleaved, medians): PublishedTrack.forward with N legs whose
 * native send is a no-op, so what is measured is Chorus's own per-packet work (layer
 * lookup, VP8 descriptor, per-leg munging and its undoing) and not libdatachannel's send
 * (measured in "SFU (bench/sfu)": most of a forwarded packet's CPU).
 *
 *   npx tsx bench/sfu/simulcast-forward.ts [--legs 30] [--packets 100000] [--rounds 7]
 */
import type { Track } from 'node-datachannel';
import { LegLayer } from '../../src/media/webrtc/leg-layer.js';
import { PublishedTrack, type ForwardTarget } from '../../src/media/webrtc/published-track.js';
import { SimulcastTrack } from '../../src/media/webrtc/simulcast-track.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const LEGS = arg('legs', 30);
const PACKETS = arg('packets', 100_000);
const ROUNDS = arg('rounds', 7);
const SSRCS = [11, 22, 33];

let sends = 0;
const nativeTrack = { sendMessageBinary: () => ++sends > 0 } as unknown as Track;

function vp8(ssrc: number, seq: number, key: boolean): Buffer {
  const p = Buffer.alloc(1100);
  p[0] = 0x80;
  p[1] = 96;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE((seq * 3000) >>> 0, 4);
  p.writeUInt32BE(ssrc, 8);
  p[12] = 0x90;
  p[13] = 0xc0;
  p.writeUInt16BE(0x8000 | (seq & 0x7fff), 14);
  p[16] = seq & 0xff;
  p[17] = key ? 0x10 : 0x11;
  return p;
}

/** A track with LEGS legs: a third of them on each layer (simulcast), all on the one stream otherwise. */
function build(simulcast: boolean): PublishedTrack {
  const track = new PublishedTrack(
    'video',
    { kind: 'video', name: 'VP8', payloadType: 96, clockRate: 90_000, fmtp: undefined },
    999,
    { isOpen: () => true, requestKeyframe: () => true },
    1000,
    512,
  );
  if (simulcast) {
    track.simulcast = new SimulcastTrack(
      track,
      { by: 'ssrc', ssrcs: SSRCS },
      { requestLayerKeyframe: () => undefined },
      512,
    );
  }
  for (let i = 0; i < LEGS; i++) {
    const target: ForwardTarget = {
      track: nativeTrack,
      payloadType: 100,
      open: true,
      subscriber: `s${i}`,
      report: { fractionLost: 0, cumulativeLost: 0, jitter: 0, at: 0 },
      layer: new LegLayer(90_000),
    };
    track.addTarget(target);
    target.layer!.target = i % SSRCS.length;
  }
  return track;
}

/** The packets of a round, made once per mode (node-datachannel hands over a fresh buffer each; the GC's share is left out here). */
const made = new Map<boolean, Buffer[]>();
function packetsFor(simulcast: boolean): Buffer[] {
  let packets = made.get(simulcast);
  if (!packets) {
    packets = [];
    for (let i = 0; i < PACKETS; i++) {
      const layer = simulcast ? i % SSRCS.length : 0;
      packets.push(vp8(SSRCS[layer]!, Math.floor(i / (simulcast ? SSRCS.length : 1)), i < SSRCS.length));
    }
    made.set(simulcast, packets);
  }
  // Forwarding rewrote the SSRC field (the layer index for the relay): as the publisher sent it.
  packets.forEach((p, i) => p.writeUInt32BE(SSRCS[simulcast ? i % SSRCS.length : 0]!, 8));
  return packets;
}

function round(simulcast: boolean): { nsPerIn: number; nsPerSent: number } {
  const track = build(simulcast);
  const packets = packetsFor(simulcast);
  sends = 0;
  const t0 = process.hrtime.bigint();
  for (const p of packets) track.forward(p);
  const ns = Number(process.hrtime.bigint() - t0);
  track.end();
  return { nsPerIn: ns / packets.length, nsPerSent: ns / sends };
}

const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
round(false); // warm-up
round(true);
const plain: number[] = [];
const layered: number[] = [];
const plainIn: number[] = [];
const layeredIn: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = round(false);
  const b = round(true);
  plain.push(a.nsPerSent);
  layered.push(b.nsPerSent);
  plainIn.push(a.nsPerIn);
  layeredIn.push(b.nsPerIn);
}
const p = median(plain);
const l = median(layered);
console.log(
  JSON.stringify({
    legs: LEGS,
    packets: PACKETS,
    rounds: ROUNDS,
    oneEncoding: { nsPerPacketIn: Math.round(median(plainIn)), nsPerPacketSent: Math.round(p) },
    simulcast3: { nsPerPacketIn: Math.round(median(layeredIn)), nsPerPacketSent: Math.round(l) },
    sentCostRatio: Math.round((l / p) * 100) / 100,
  }),
);
