import { afterEach, describe, expect, it } from 'vitest';
import type { Track } from 'node-datachannel';
import { LegLayer } from '../../src/media/webrtc/leg-layer.js';
import { PublishedTrack, type ForwardTarget } from '../../src/media/webrtc/published-track.js';
import { SimulcastTrack, type LayerKeying } from '../../src/media/webrtc/simulcast-track.js';

const RID_EXT = 10;

/** A VP8 packet of layer `ssrc`; its rid in a one-byte extension when given; a key frame's start when `key`. */
function packet(
  ssrc: number,
  seq: number,
  opts: { rid?: string; key?: boolean; width?: number } = {},
): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = 96;
  header.writeUInt16BE(seq, 2);
  header.writeUInt32BE(seq * 3000, 4);
  header.writeUInt32BE(ssrc, 8);
  let ext = Buffer.alloc(0);
  if (opts.rid !== undefined) {
    header[0] = 0x90;
    const body = [(RID_EXT << 4) | (opts.rid.length - 1), ...Buffer.from(opts.rid)];
    while (body.length % 4) body.push(0);
    ext = Buffer.concat([Buffer.from([0xbe, 0xde, 0, body.length / 4]), Buffer.from(body)]);
  }
  const vp8 = Buffer.alloc(14);
  vp8[0] = 0x90; // X, S, PID 0
  vp8[1] = 0x80; // I
  vp8.writeUInt16BE(0x8000 | (seq & 0x7fff), 2);
  vp8[4] = opts.key ? 0x10 : 0x11;
  vp8[7] = 0x9d;
  vp8[8] = 0x01;
  vp8[9] = 0x2a;
  vp8.writeUInt16LE(opts.width ?? 0, 10);
  return Buffer.concat([header, ext, vp8]);
}

interface Leg {
  target: ForwardTarget;
  sent: Buffer[];
}

function leg(): Leg {
  const sent: Buffer[] = [];
  const track = { sendMessageBinary: (b: Buffer) => sent.push(Buffer.from(b)) > 0 } as unknown as Track;
  const target: ForwardTarget = {
    track,
    payloadType: 100,
    open: true,
    subscriber: 'x',
    report: { fractionLost: 0, cumulativeLost: 0, jitter: 0, at: 0 },
    layer: new LegLayer(90_000),
  };
  return { target, sent };
}

const ended: SimulcastTrack[] = [];
afterEach(() => {
  for (const t of ended.splice(0)) t.end();
});

function simulcast(keying: LayerKeying): { track: PublishedTrack; layers: SimulcastTrack; plis: number[] } {
  const plis: number[] = [];
  const track = new PublishedTrack(
    'video',
    { kind: 'video', name: 'VP8', payloadType: 96, clockRate: 90_000, fmtp: undefined },
    999,
    { isOpen: () => true, requestKeyframe: () => true },
    1000,
    64,
  );
  const layers = new SimulcastTrack(
    track,
    keying,
    { requestLayerKeyframe: (_l, ssrc) => plis.push(ssrc) },
    64,
  );
  track.simulcast = layers;
  ended.push(layers);
  return { track, layers, plis };
}

/** A two-layer track (320 and 640 wide, key frames seen) with one leg, chosen once at `t0`. */
function twoLayersOneLeg(): ReturnType<typeof simulcast> & { legLayer: LegLayer; t0: number } {
  const s = simulcast({ by: 'ssrc', ssrcs: [11, 22] });
  const a = leg();
  s.track.addTarget(a.target);
  const t0 = Date.now();
  s.track.forward(packet(11, 1, { key: true, width: 320 }));
  s.track.forward(packet(22, 1, { key: true, width: 640 }));
  s.layers.select(t0);
  return { ...s, legLayer: a.target.layer!, t0 };
}

describe('SimulcastTrack', () => {
  it('learns rid layers from the extension; bad rids and truncated extensions are counted, not forwarded', () => {
    const { track, layers, plis } = simulcast({ by: 'rid', rids: ['q', 'h', 'f'], extension: RID_EXT });
    const a = leg();
    track.addTarget(a.target);
    track.forward(packet(11, 1, { rid: 'q', key: true, width: 320 }));
    track.forward(packet(22, 1, { rid: 'h', key: true, width: 640 }));
    track.forward(packet(33, 1, { rid: 'f', key: true, width: 1280 }));
    expect(layers.layerSsrc(0)).toBe(11);
    expect(layers.layerSsrc(2)).toBe(33);
    expect(layers.layers.map((l) => l.width)).toEqual([320, 640, 1280]);
    track.forward(packet(44, 1, { rid: 'x' }));
    const truncated = packet(55, 1, { rid: 'h' }).subarray(0, 15);
    track.forward(truncated);
    track.forward(packet(66, 1)); // no extension at all
    expect(layers.unknownPackets).toBe(3);
    // Layers known: the leg is given the top one, its key frame asked for on its SSRC.
    layers.select(Date.now());
    expect(a.target.layer!.target).toBe(2);
    expect(plis).toContain(33);
    expect(a.sent).toHaveLength(0);
    // Only that layer's key frame starts the leg; the others' packets do not reach it.
    track.forward(packet(11, 2));
    track.forward(packet(33, 2, { key: true, width: 1280 }));
    track.forward(packet(22, 2));
    track.forward(packet(33, 3));
    expect(a.sent.map((p) => [p.readUInt32BE(8), p.readUInt16BE(2), p[1]! & 0x7f])).toEqual([
      [999, 2, 100],
      [999, 3, 100],
    ]);
  });

  it('switches a leg down on the new layer key frame: numbers run on, NACKs map to that layer', () => {
    const { track, layers } = simulcast({ by: 'ssrc', ssrcs: [11, 22] });
    const a = leg();
    track.addTarget(a.target);
    track.forward(packet(11, 100, { key: true, width: 320 }));
    track.forward(packet(22, 5000, { key: true, width: 640 }));
    layers.select(Date.now());
    track.forward(packet(22, 5001, { key: true, width: 640 }));
    track.forward(packet(22, 5002));
    a.target.layer!.preference.maxWidth = 320;
    layers.select(Date.now());
    track.forward(packet(22, 5003)); // still the old layer until the new one's key frame
    track.forward(packet(11, 101));
    track.forward(packet(11, 102, { key: true, width: 320 }));
    track.forward(packet(11, 103));
    const seqs = a.sent.map((p) => p.readUInt16BE(2));
    expect(seqs).toEqual([5001, 5002, 5003, 5004, 5005]);
    expect(a.target.layer!.current).toBe(0);
    // The publisher's buffers keep their own numbers, with the layer index for the relay.
    const resent = a.sent.length;
    expect(track.resend(5005, a.target)).toBe(true);
    expect(a.sent[resent]!.readUInt16BE(2)).toBe(5005);
    expect(a.sent[resent]!.subarray(12)).toEqual(a.sent[4]!.subarray(12));
    expect(track.resend(5002, a.target)).toBe(false); // sent from the other layer's run
  });

  it('relayed packets: the layer in the SSRC field; a layer past the count is dropped', () => {
    const { track, layers } = simulcast({ by: 'relay', layers: 2 });
    const a = leg();
    track.addTarget(a.target);
    track.forward(packet(7, 1, { key: true }));
    track.forward(packet(0xffffffff, 1, { key: true }));
    expect(layers.unknownPackets).toBe(2);
    track.forward(packet(1, 1, { key: true, width: 640 }));
    layers.select(Date.now());
    const p = packet(1, 2, { key: true, width: 640 });
    track.forward(p);
    expect(a.sent).toHaveLength(1);
    expect(p.readUInt32BE(8)).toBe(1); // left as the relay wire has it
  });

  it('a leg held down by a falling REMB tries a layer up only when a REMB, now or at its peak, covers it', () => {
    const { track, layers, plis, legLayer, t0 } = twoLayersOneLeg();
    expect(legLayer.target).toBe(1);
    layers.layers[0]!.bps = 150_000; // as Chromium's 320 and 640 layers send
    layers.layers[1]!.bps = 500_000;
    // The receiver's REMB fell 9 s ago (congestion): the leg is limited and goes down.
    legLayer.onEstimate(400_000, t0 - 10_000);
    legLayer.onEstimate(200_000, t0 - 9_000);
    legLayer.onEstimate(230_000, t0); // risen since, as far as libwebrtc lets it (~1.5x 150k)
    layers.select(t0 + 1);
    expect(legLayer.target).toBe(0);
    track.forward(packet(11, 2, { key: true, width: 320 }));
    expect(legLayer.current).toBe(0);
    layers.select(t0 + 2); // measures the key frame above: set the rate again
    layers.layers[0]!.bps = 150_000;
    // Long past the fall and the first wait, but no REMB (230k now, 400k at its peak)
    // carries 500k: it stays.
    const asked = plis.length;
    layers.select(t0 + 3);
    expect(legLayer.target).toBe(0);
    expect(plis).toHaveLength(asked);
    // A REMB covering the layer (with TRY_UP_COVER's margin, short of the switch headroom
    // that would lift the limit alone): the leg tries it, asking for its key frame.
    legLayer.onEstimate(540_000, t0 + 4);
    layers.select(t0 + 5);
    expect(legLayer.target).toBe(1);
    expect(plis.at(-1)).toBe(22);
    // The try fails (the REMB falls at once): down again, and the next try waits twice
    // as long.
    legLayer.onEstimate(300_000, t0 + 6);
    layers.select(t0 + 7);
    expect(legLayer.target).toBe(0);
    expect(legLayer.probeBackoffMs).toBe(8_000);
    expect(legLayer.nextProbeAt).toBe(t0 + 7 + 8_000);
  });

  it('a leg whose REMB once carried the layer above tries it after a fall, though its REMB now cannot', () => {
    const { track, layers, plis, legLayer, t0 } = twoLayersOneLeg();
    layers.layers[0]!.bps = 150_000;
    layers.layers[1]!.bps = 500_000;
    // A free link: REMB 900k, then one fall (a stall on a loaded machine) to 150k.
    legLayer.onEstimate(900_000, t0 - 10_000);
    legLayer.onEstimate(150_000, t0 - 9_000);
    legLayer.onEstimate(230_000, t0);
    layers.select(t0 + 1);
    expect(legLayer.target).toBe(0);
    track.forward(packet(11, 2, { key: true, width: 320 }));
    layers.select(t0 + 2);
    layers.layers[0]!.bps = 150_000;
    layers.select(t0 + 3);
    expect(legLayer.target).toBe(1);
    expect(plis.at(-1)).toBe(22);
  });

  it('a try up is judged by REMB and loss: the layer measuring more (its key frame) does not undo it (#18)', () => {
    const { track, layers, legLayer, t0 } = twoLayersOneLeg();
    const rates = (up: number): void => {
      layers.layers[0]!.bps = 150_000;
      layers.layers[1]!.bps = up;
    };
    rates(500_000);
    legLayer.onEstimate(400_000, t0 - 10_000);
    legLayer.onEstimate(200_000, t0 - 9_000); // fell: limited to the 320 layer
    layers.select(t0 + 1);
    expect(legLayer.target).toBe(0);
    track.forward(packet(11, 2, { key: true, width: 320 }));
    rates(500_000);
    // A REMB covering the 640 layer: the leg tries it, its limit set from the layer's rate.
    legLayer.onEstimate(540_000, t0 + 2);
    layers.select(t0 + 3);
    expect(legLayer.target).toBe(1);
    track.forward(packet(22, 2, { key: true, width: 640 }));
    expect(legLayer.current).toBe(1);
    // The key frame the switch asked for: the layer measures 2.5x its rate for a while.
    // The REMB did not fall, there is no loss: the leg stays.
    for (let t = 4; t <= 8; t++) {
      rates(1_250_000);
      layers.select(t0 + t);
      expect(legLayer.target).toBe(1);
    }
    // A REMB that falls is a verdict: down.
    rates(500_000);
    legLayer.onEstimate(300_000, t0 + 9);
    layers.select(t0 + 10);
    expect(legLayer.target).toBe(0);
  });

  it('a leg shown larger ignores falls of its old REMB until that REMB covers the layer its size allows (#18)', () => {
    const { track, layers, legLayer, t0 } = twoLayersOneLeg();
    const rates = (): void => {
      layers.layers[0]!.bps = 150_000;
      layers.layers[1]!.bps = 500_000;
    };
    rates();
    legLayer.preference.maxWidth = 320; // shown small: the 320 layer, REMB ~1.5x it
    legLayer.onEstimate(230_000, t0 - 2_000);
    legLayer.onEstimate(220_000, t0 - 1_000);
    layers.select(t0 + 1);
    expect(legLayer.target).toBe(0);
    track.forward(packet(11, 2, { key: true, width: 320 }));
    // Shown at 640: a fresh start, up to the 640 layer on its key frame.
    legLayer.preference.maxWidth = 640;
    legLayer.freshStart(t0 + 2);
    rates();
    layers.select(t0 + 3);
    expect(legLayer.target).toBe(1);
    track.forward(packet(22, 2, { key: true, width: 640 }));
    expect(legLayer.current).toBe(1);
    // The old REMB falls (no loss): the leg stays.
    legLayer.onEstimate(180_000, t0 + 4);
    rates();
    layers.select(t0 + 5);
    expect(legLayer.target).toBe(1);
    expect(legLayer.staleUntil).toBeGreaterThan(0);
    // Once it covers the 640 layer it is the leg's own again: its next fall limits it.
    legLayer.onEstimate(520_000, t0 + 6);
    rates();
    layers.select(t0 + 7);
    expect(legLayer.staleUntil).toBe(0);
    legLayer.onEstimate(300_000, t0 + 8);
    rates();
    layers.select(t0 + 9);
    expect(legLayer.target).toBe(0);
  });

  it('sustained loss in the receiver reports takes a leg a layer down, and a try up waits (#18)', () => {
    const { track, layers, plis } = simulcast({ by: 'ssrc', ssrcs: [11, 22, 33] });
    const a = leg();
    const legLayer = a.target.layer!;
    track.addTarget(a.target);
    const t0 = Date.now();
    track.forward(packet(11, 1, { key: true, width: 320 }));
    track.forward(packet(22, 1, { key: true, width: 640 }));
    track.forward(packet(33, 1, { key: true, width: 1280 }));
    layers.select(t0);
    expect(legLayer.target).toBe(2); // no REMB yet: the top layer
    track.forward(packet(33, 2, { key: true, width: 1280 }));
    expect(legLayer.current).toBe(2);
    const rates = (): void => {
      layers.layers[0]!.bps = 150_000;
      layers.layers[1]!.bps = 340_000;
      layers.layers[2]!.bps = 735_000;
    };
    rates();
    // A first REMB already at what the congested link delivers, never falling: no limit.
    // (Times before t0: a layer without packets for 1.5 s of the real clock is paused.)
    legLayer.onEstimate(480_000, t0 - 3_000);
    legLayer.onEstimate(500_000, t0 - 2_500);
    layers.select(t0 + 1);
    rates();
    expect(legLayer.target).toBe(2);
    // Half the packets lost, report after report, for a second: down to the 640 layer.
    for (let t = -1_000; t <= 0; t += 250) legLayer.onReport(0.5, t0 + t);
    expect(legLayer.peakBps).toBe(500_000);
    layers.select(t0 + 2);
    expect(legLayer.target).toBe(1);
    expect(plis.at(-1)).toBe(22);
    track.forward(packet(22, 2, { key: true, width: 640 }));
    expect(legLayer.current).toBe(1);
    rates();
    // Loss goes on while the link's queue drains: not lower before LOSS_DOWN_EVERY_MS.
    legLayer.onReport(0.3, t0 + 3);
    layers.select(t0 + 4);
    expect(legLayer.target).toBe(1);
    // Long after the fall, the REMB (500k now and at its peak) has never covered the
    // 1280 layer: no try up.
    rates();
    legLayer.fellAt = t0 - 60_000;
    legLayer.onReport(0, t0 + 5_000); // a second clean: the average back to 0
    legLayer.onEstimate(520_000, t0 + 5);
    layers.select(t0 + 6);
    expect(legLayer.target).toBe(1);
    // One that does (the link cleared): the leg tries the top layer again.
    rates();
    legLayer.onEstimate(800_000, t0 + 7);
    layers.select(t0 + 8);
    expect(legLayer.target).toBe(2);
    expect(plis.at(-1)).toBe(33);
  });

  it('never throws on any bytes (a throw in a native callback would close the publisher)', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (const keying of [
      { by: 'rid', rids: ['q', 'h', 'f'], extension: RID_EXT },
      { by: 'ssrc', ssrcs: [11, 22, 33] },
      { by: 'relay', layers: 3 },
    ] satisfies LayerKeying[]) {
      const { track, layers } = simulcast(keying);
      const a = leg();
      track.addTarget(a.target);
      for (let i = 0; i < 20_000; i++) {
        const p = Buffer.alloc(Math.floor(random() * 60));
        for (let j = 0; j < p.length; j++) p[j] = Math.floor(random() * 256);
        // Often a plausible header: version 2, one of the layers, an extension, VP8 bits.
        if (p.length >= 12 && random() < 0.7) {
          p[0] = 0x80 | (random() < 0.5 ? 0x10 : 0) | Math.floor(random() * 3);
          p.writeUInt32BE(keying.by === 'relay' ? Math.floor(random() * 4) : [11, 22, 33][i % 3]!, 8);
          if (p.length >= 16 && random() < 0.5) p.writeUInt16BE(0xbede, 12);
        }
        expect(() => track.forward(p)).not.toThrow();
        if (i % 500 === 0) layers.select(Date.now());
        if (i % 7 === 0) expect(() => track.resend(Math.floor(random() * 65536), a.target)).not.toThrow();
      }
    }
  });
});
