import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtcpReceivingSession } from 'node-datachannel';
import { NdcSubscriber } from '../fixtures/ndc-peer.js';
import { onlyLayer, SimulcastPublisher, SSRCS } from '../fixtures/ndc-simulcast-publisher.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { eventually } from '../fixtures/ws-client.js';
import { asUserId } from '../../src/core/ids.js';
import { asRoomId } from '../../src/core/room-types.js';
import { buildRemb } from '../../src/media/webrtc/rtp.js';

/** The layers the last `n` video packets came from, and their sequence number gaps. */
function lastPackets(sub: NdcSubscriber, n: number): { layers: Set<number>; gaps: number; count: number } {
  const last = sub.videoPackets.slice(-n);
  let gaps = 0;
  for (let i = 1; i < last.length; i++)
    if (((last[i]!.readUInt16BE(2) - last[i - 1]!.readUInt16BE(2)) & 0xffff) !== 1) gaps++;
  return { layers: new Set(last.map((p) => p[30]!)), gaps, count: last.length };
}

describe('SSRC simulcast (a=ssrc-group:SIM)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' } });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('each leg gets one layer as one stream; a falling REMB moves a leg down; a PLI names the layer', async () => {
    const { sfu, rooms } = server.server.engine;
    const room = rooms.open(asRoomId('sim'), { kind: 'conference', metadata: null });
    const pub = new SimulcastPublisher();
    const wide = new NdcSubscriber();
    const narrow = new NdcSubscriber();
    // The narrow leg's receiver: its estimate falls while more than 150 kbit/s comes in.
    let feedback: NodeJS.Timeout | undefined;
    try {
      await pub.negotiate((offer) => sfu.publish(room, asUserId('ada'), offer));
      pub.start();
      await wide.negotiate((offer) => sfu.subscribe(room, asUserId('wide'), asUserId('ada'), offer));
      await narrow.negotiate((offer) => sfu.subscribe(room, asUserId('narrow'), asUserId('ada'), offer));
      narrow.audio.setMediaHandler(new RtcpReceivingSession());
      let remb = 1_000_000;
      let counted = 0;
      feedback = setInterval(() => {
        const got = narrow.videoPackets.length;
        const bps = narrow.videoPackets.slice(counted).reduce((n, p) => n + p.length, 0) * 8 * 4;
        counted = got;
        remb = bps > 150_000 ? Math.max(50_000, Math.min(remb, bps) * 0.85) : Math.min(150_000, remb * 1.05);
        const ssrc = narrow.videoPackets[0]?.readUInt32BE(8);
        if (ssrc !== undefined) narrow.video.sendMessageBinary(buildRemb(1, remb, [ssrc]));
      }, 250);

      // No estimate, no size: the top layer, asked for with a PLI on its own SSRC.
      await eventually(
        () => onlyLayer(wide.videoPackets, 60, 2),
        20_000,
        'the top layer alone for the wide leg',
      );
      expect(pub.plis).toContain(SSRCS[2]);
      await eventually(
        () => onlyLayer(narrow.videoPackets, 30, 0),
        20_000,
        'the lowest layer alone for the narrow leg',
      );
      expect(pub.plis).toContain(SSRCS[0]);

      // The wide leg asks for 640 pixels: it moves to layer 1 on its key frame, and its
      // sequence numbers run on across the switch.
      const before = wide.videoPackets.length;
      expect(
        sfu.setLayerPreference(room, asUserId('wide'), asUserId('ada'), { maxWidth: 640, maxHeight: 0 }),
      ).toBe(true);
      await eventually(
        () => {
          const l = lastPackets(wide, 40);
          return l.layers.size === 1 && l.layers.has(1);
        },
        20_000,
        'layer 1 for the wide leg',
      );
      const across = wide.videoPackets.slice(before - 20);
      let gaps = 0;
      for (let i = 1; i < across.length; i++)
        if (((across[i]!.readUInt16BE(2) - across[i - 1]!.readUInt16BE(2)) & 0xffff) !== 1) gaps++;
      expect(gaps).toBe(0);
      // The first packet of the new layer is its key frame (P bit clear, 640 wide).
      const first = across.findIndex((p) => p[30] === 1);
      expect(across[first]![16]! & 0x01).toBe(0);
      expect(across[first]!.readUInt16LE(22)).toBe(640);
      // Picture ids run on across the switch too.
      const pic = (p: Buffer): number => p.readUInt16BE(14) & 0x7fff;
      expect(pic(across[first]!)).toBe((pic(across[first - 1]!) + 1) & 0x7fff);
      // The room's stats: each layer as measured, and each leg's layer.
      const video = sfu.roomStats(room).publishers[0]!.tracks.find((t) => t.kind === 'video')!;
      expect(video.layers!.map((l) => [l.name, l.width, l.active])).toEqual([
        ['ssrc:3001', 320, true],
        ['ssrc:3002', 640, true],
        ['ssrc:3003', 1280, true],
      ]);
      const legs = Object.fromEntries(video.subscribers.map((s) => [s.user, s.layer]));
      expect(legs.wide).toMatchObject({ current: 1, target: 1 });
      expect(legs.wide!.switches).toBeGreaterThanOrEqual(2);
      // The narrow leg's REMB fell: it has a limit (its layer may be mid-try by now).
      expect(legs.narrow!.limitBps).toBeGreaterThan(0);
      expect(sfu.layersWanted.current('sim', 'ada-video')?.layers.map((l) => l.name)).toEqual(
        SSRCS.map((s) => `ssrc:${s}`),
      );
    } finally {
      clearInterval(feedback);
      for (const c of [wide, narrow, pub]) c.close();
    }
  }, 90_000);
});
