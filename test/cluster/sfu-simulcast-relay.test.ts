import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { exchange, NdcSubscriber } from '../fixtures/ndc-peer.js';
import {
  inboundVideo,
  outboundByRid,
  publishSimulcast,
  subscribeVideo,
} from '../fixtures/simulcast-pages.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';
import { buildRemb } from '../../src/media/webrtc/rtp.js';
import { Vp8Descriptor } from '../../src/media/webrtc/vp8-descriptor.js';

// A Chromium publisher sends three layers into node 0; on node 1 a Chromium subscriber
// with a free link and a node-datachannel subscriber whose REMB says its link takes
// 250 kbit/s receive the track through the relay, which carries every layer; node 1
// chooses per leg: the top layer for one, the lowest for the other.

const run = hasTool('nats-server', 'nats-server') && hasTool('chromium', 'chromium');

/** The width in a VP8 key frame's first packet (RFC 6386 9.1), or 0 when it is not one. */
function keyframeWidth(packet: Buffer): number {
  const d = new Vp8Descriptor();
  let at = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) at += 4 + packet.readUInt16BE(at + 2) * 4;
  if (!d.read(packet, at) || !d.keyframe) return 0;
  let i = at + 1;
  if (packet[at]! & 0x80) {
    const x = packet[i++]!;
    if (x & 0x80) i += d.longPictureId ? 2 : 1;
    if (x & 0x40) i++;
    if (x & 0x30) i++;
  }
  if (packet[i + 3] !== 0x9d || packet[i + 4] !== 0x01 || packet[i + 5] !== 0x2a) return 0;
  return packet.readUInt16LE(i + 6) & 0x3fff;
}

describe.runIf(run)('simulcast across nodes', () => {
  let cluster: Cluster;
  let browser: TestBrowser;
  const url = (i: number): string => cluster.nodes[i]!.url;

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 2,
      env: {
        WEBRTC_BIND_ADDRESS: '127.0.0.1',
        SIGNAL_ENABLED: 'no',
        VOIP_ENABLED: 'no',
        BEEP_ENABLED: 'no',
        STREAM_ENABLED: 'no',
      },
    });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('the relay carries every layer; the receiving node gives each leg its own', async () => {
    const res = await fetch(`${url(0)}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'ada' }),
    });
    expect(res.status).toBe(201);
    const room = ((await res.json()) as { id: string }).id;
    const via = (i: number, path: string) => async (offer: string) => {
      const r = await exchange(url(i), path, offer);
      if (!r.answer) throw new Error(`${path}: ${r.status} ${r.error ?? ''}`);
      return r.answer;
    };
    const open = async (i: number): Promise<Page> => {
      const page = await (await browser.browser.newContext()).newPage();
      await page.goto(`${url(i)}/healthz`);
      return page;
    };

    const publisher = await open(0);
    await publishSimulcast(publisher, via(0, `/webrtc/sdp/m/${room}/c/ada/p/ada/s/true`));
    await eventually(
      async () => {
        const out = await outboundByRid(publisher);
        return out.q?.frameWidth === 320 && out.f?.frameWidth === 1280;
      },
      30_000,
      'three layers sent',
    );

    const page = await open(1);
    await subscribeVideo(page, via(1, `/webrtc/sdp/m/${room}/c/grace/p/ada/s/false`));
    const ndc = new NdcSubscriber();
    try {
      const r = await ndc.subscribe(url(1), room, 'linus', 'ada');
      expect(r.status, r.error).toBe(200);
      // A receiver behind 250 kbit/s: its estimate falls while more than that comes in,
      // and climbs back towards the link's rate while less does (as libwebrtc's does).
      let remb = 2_000_000;
      let counted = 0;
      const feedback = setInterval(() => {
        const bytes = ndc.videoPackets.slice(counted).reduce((n, p) => n + p.length, 0);
        counted = ndc.videoPackets.length;
        const bps = bytes * 8 * 2;
        remb = bps > 250_000 ? Math.max(100_000, Math.min(remb, bps) * 0.85) : Math.min(250_000, remb * 1.05);
        try {
          const ssrc = ndc.videoPackets[0]?.readUInt32BE(8);
          if (ssrc !== undefined) ndc.video.sendMessageBinary(buildRemb(1, remb, [ssrc]));
        } catch {
          // closing
        }
      }, 500);
      try {
        await eventually(
          async () => (await inboundVideo(page))?.frameWidth === 1280,
          40_000,
          'top layer on node 1',
        );
        // The constrained leg settles on the lowest layer: its last key frame is 320 wide,
        // and it sees one stream (consecutive sequence numbers), not the layers mixed.
        await eventually(
          () => {
            const last = ndc.videoPackets.slice(-150);
            const widths = last.map(keyframeWidth).filter((w) => w > 0);
            let gaps = 0;
            for (let i = 1; i < last.length; i++)
              if (((last[i]!.readUInt16BE(2) - last[i - 1]!.readUInt16BE(2)) & 0xffff) !== 1) gaps++;
            return last.length === 150 && widths.at(-1) === 320 && gaps <= 2;
          },
          40_000,
          'the lowest layer alone for the constrained leg',
        );
        // The Chromium leg on the same node keeps the top layer meanwhile.
        expect((await inboundVideo(page))?.frameWidth).toBe(1280);
      } finally {
        clearInterval(feedback);
      }
    } finally {
      ndc.close();
    }
  }, 180_000);
});
