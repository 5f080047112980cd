import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { eventually } from '../fixtures/ws-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { canShapeLinks, createShapedLink, kernelHasNetem, type ShapedLink } from '../fixtures/shaped-link.js';
import { outboundByRid, publishSimulcast, subscribeVideo } from '../fixtures/simulcast-pages.js';
import { receivedVideo, type ReceivedVideo } from '../fixtures/codec-pages.js';
import { asUserId } from '../../src/core/ids.js';
import { asRoomId } from '../../src/core/room-types.js';

// Issue 18 item 6: a Chromium publisher sends three simulcast layers (320, 640, 1280 wide);
// one Chromium subscriber sits behind 500 kbit/s and 2 % loss each way (and 80 ms of delay
// each way where the kernel has netem; this machine's has not), another on the host. The
// constrained one keeps decoding on a low layer, the other gets the top layer, and the
// publisher's top layer is not dragged down. Without netem there is no fixed delay: the
// only delay is tbf's queue (up to 200 ms at the rate, shaped-link.ts), which a leg
// sending more than the link carries fills. What keeps the constrained leg down is the
// layer choice's rule that a try up needs a REMB covering the layer (docs/sfu.md).

const WINDOW_MS = 30_000;
const haveTools = hasTool('chromium', 'chromium') && hasTool('nft', 'nftables') && hasTool('tc', 'iproute2');

describe.runIf(haveTools && canShapeLinks())('simulcast subscribers on a constrained and a free link', () => {
  let link: ShapedLink;
  let server: TestServer;
  let host: TestBrowser;
  let behind: TestBrowser;
  const delayMs = kernelHasNetem() ? 80 : 0;

  beforeAll(async () => {
    link = createShapedLink();
    link.shape({ rateKbit: 500, lossPercent: 2, delayMs });
    server = await startTestServer({
      webrtc: { udpPort: await freeUdpPort(), bindAddress: link.hostAddress, peerTimeoutSeconds: 20 },
    });
    host = await launchChromium();
    behind = await launchChromium([], link.chromium);
  }, 60_000);
  afterAll(async () => {
    await behind?.close();
    await host?.close();
    await server?.close();
    link?.close();
  });

  it('the constrained one decodes a low layer without freezing, the free one the top layer; the publisher keeps sending it', async () => {
    const engine = server.server.engine;
    const room = engine.rooms.open(asRoomId('shaped'), { kind: 'conference', metadata: null });
    const sfu = engine.sfu;
    const publisher = await (await host.browser.newContext()).newPage();
    await publisher.goto(`${server.url}/healthz`); // a secure context (loopback) for getUserMedia
    await publishSimulcast(publisher, (offer) => sfu.publish(room, asUserId('pub'), offer));
    const free: Page = await (await host.browser.newContext()).newPage();
    await subscribeVideo(free, (offer) => sfu.subscribe(room, asUserId('free'), asUserId('pub'), offer));
    const slow: Page = await (await behind.browser.newContext()).newPage();
    await subscribeVideo(slow, (offer) => sfu.subscribe(room, asUserId('slow'), asUserId('pub'), offer));

    // What the SFU saw, for the failure messages: each layer's measured rate, and each
    // leg's layer and REMB limit.
    const sfuView = () =>
      sfu
        .roomStats(room)
        .publishers.flatMap((p) => p.tracks)
        .filter((t) => t.layers)
        .map((t) => ({
          layers: t.layers!.map((l) => `${l.name}:${l.width}:${Math.round(l.bps / 1000)}k`),
          legs: t.subscribers.map((l) => ({ user: l.user, ...l.layer, loss: l.lossPercent })),
        }));
    const explained = async (wait: Promise<void>): Promise<void> => {
      try {
        await wait;
      } catch (e) {
        const seen = { slow: await receivedVideo(slow), free: await receivedVideo(free), sfu: sfuView() };
        throw new Error(`${(e as Error).message}: ${JSON.stringify(seen)}`, { cause: e });
      }
    };
    await eventually(
      async () => (await receivedVideo(free))?.frameWidth === 1280,
      60_000,
      'top layer on the free link',
    );
    // The constrained leg's estimate (REMB) brings it down to a layer its link carries.
    await explained(
      eventually(
        async () => {
          const v = await receivedVideo(slow);
          return v !== undefined && v.framesDecoded > 0 && v.frameWidth > 0 && v.frameWidth < 1280;
        },
        60_000,
        'a low layer on the constrained link',
      ),
    );

    const top = async (): Promise<number> => (await outboundByRid(publisher)).f?.bytes ?? 0;
    const slow0 = (await receivedVideo(slow))!;
    const free0 = (await receivedVideo(free))!;
    const top0 = await top();
    const start = Date.now();
    // Over the window, sampled every few tens of ms: the constrained leg's width (it may
    // probe a layer up now and then; it must stay on a low one) and the longest stretch
    // without a new decoded frame on each leg (Chromium's own freeze stats give only a
    // count and a total).
    const widths = new Map<number, number>();
    const freeSamples: number[] = [];
    const longest = { slow: 0, free: 0 };
    const last = {
      slow: { frames: slow0.framesDecoded, at: start },
      free: { frames: free0.framesDecoded, at: start },
    };
    await eventually(
      async () => {
        const now = Date.now();
        for (const [name, page] of [
          ['slow', slow],
          ['free', free],
        ] as const) {
          const v = (await receivedVideo(page))!;
          if (name === 'slow') widths.set(v.frameWidth, (widths.get(v.frameWidth) ?? 0) + 1);
          else freeSamples.push(v.frameWidth);
          if (v.framesDecoded > last[name].frames) {
            longest[name] = Math.max(longest[name], now - last[name].at);
            last[name] = { frames: v.framesDecoded, at: now };
          }
        }
        return now - start >= WINDOW_MS;
      },
      WINDOW_MS + 20_000,
      'the measuring window',
    );
    const seconds = (Date.now() - start) / 1000;
    const slow1 = (await receivedVideo(slow))!;
    const free1 = (await receivedVideo(free))!;
    const topKbps = ((await top()) - top0) / 125 / seconds;
    const delta = (a: ReceivedVideo, b: ReceivedVideo) => ({
      fps: Number(((b.framesDecoded - a.framesDecoded) / seconds).toFixed(1)),
      freezes: b.freezeCount - a.freezeCount,
      freezeSeconds: Number((b.totalFreezesDuration - a.totalFreezesDuration).toFixed(2)),
      width: b.frameWidth,
      repaired: b.retransmittedPacketsReceived - a.retransmittedPacketsReceived,
      lost: b.packetsLost - a.packetsLost,
    });
    const samples = [...widths.values()].reduce((x, y) => x + y, 0);
    const lowShare = [...widths].filter(([w]) => w < 1280).reduce((x, [, n]) => x + n, 0) / samples;
    const report = {
      delayMs,
      slow: {
        ...delta(slow0, slow1),
        longestFreezeMs: Math.max(longest.slow, Date.now() - last.slow.at),
        widths: Object.fromEntries(widths),
        lowLayerShare: Number(lowShare.toFixed(2)),
      },
      free: {
        ...delta(free0, free1),
        longestFreezeMs: Math.max(longest.free, Date.now() - last.free.at),
        topLayerShare: Number((freeSamples.filter((w) => w === 1280).length / freeSamples.length).toFixed(2)),
      },
      topLayerKbps: Math.round(topKbps),
      // What the SFU saw: each layer's measured rate, and each leg's layer and REMB limit.
      sfu: sfuView(),
    };
    const why = JSON.stringify(report);
    // The bar: >= 10 frames/s and no freeze over a second on the constrained link,
    // on a low layer (at least 80 % of the window below the top one: probes up are allowed).
    expect(report.slow.fps, why).toBeGreaterThanOrEqual(10);
    expect(report.slow.longestFreezeMs, why).toBeLessThan(1000);
    expect(report.slow.lowLayerShare, why).toBeGreaterThanOrEqual(0.8);
    // The free one got the top layer (waited for above) and keeps coming back to it in the
    // window. Not all of it: on a loaded 2-core box its own Chromium stalls, its REMB falls
    // and it stays a layer down until a try up holds (measured 4-100 % of the window at a
    // load of 3-14); the constrained one never gets there.
    expect(report.free.topLayerShare, why).toBeGreaterThan(0);
    expect(report.free.fps, why).toBeGreaterThanOrEqual(10);
    // The publisher's top layer still goes out at a real rate (Chromium's 1280x720 layer
    // from a fake camera: well over what the constrained link could carry).
    expect(report.topLayerKbps, why).toBeGreaterThan(500);
    process.stdout.write(`constrained vs free link over ${WINDOW_MS / 1000} s: ${why}\n`);
    room.close('test over');
  }, 240_000);
});
