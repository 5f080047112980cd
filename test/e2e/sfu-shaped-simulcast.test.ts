import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { eventually } from '../fixtures/ws-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { canShapeLinks, createShapedLink, type ShapedLink } from '../fixtures/shaped-link.js';
import { DelayUdpRelay } from '../fixtures/delay-udp-relay.js';
import { answerThroughRelay, offerWithoutCandidates } from '../fixtures/lossy-udp-relay.js';
import { outboundByRid, publishSimulcast, subscribeVideo } from '../fixtures/simulcast-pages.js';
import { receivedVideo, type ReceivedVideo } from '../fixtures/codec-pages.js';
import { asUserId } from '../../src/core/ids.js';
import { asRoomId } from '../../src/core/room-types.js';

// Issue 18 item 6: a Chromium publisher sends three simulcast layers (320, 640, 1280 wide);
// one Chromium subscriber sits behind 500 kbit/s (tbf), 2 % loss each way (nftables) and
// 80 ms of delay each way, another on the host. The constrained one keeps decoding on a
// low layer, the other gets the top layer, and the publisher's top layer is not dragged
// down. The delay: this kernel has no netem, so the constrained subscriber's media goes
// through a userspace relay (delay-udp-relay.ts) on the link's host address that holds
// every datagram 80 ms each way: a round trip of 160 ms plus tbf's queue (up to 200 ms
// at the rate when a leg sends more than the link carries). Its offer goes without its
// own candidates and the SFU's answer names the relay, so the SFU reaches it only there.
// What brings the constrained leg down is the layer choice's loss and REMB rules, and what
// keeps it down is that a try up needs a REMB covering the layer (docs/sfu.md).

const WINDOW_MS = 30_000;

/** What a page's frame sampler saw (SAMPLE_FRAMES). */
interface FramesSeen {
  /** The longest stretch the samples saw without a new decoded frame, ms. */
  longestFreezeMs: number;
  /** The sampler's own longest gap between samples (its page stalled), ms. */
  samplerStallMs: number;
  /** Samples per decoded frame width. */
  widths: Record<string, number>;
}

/**
 * Started in a subscriber page: every 50 ms, its inbound video's framesDecoded and
 * frameWidth. A freeze is the stretch from the sample that saw the last new frame to the
 * last sample that still saw none (what was seen; a stall of the page's own timer is
 * reported apart, as samplerStallMs).
 */
const SAMPLE_FRAMES = `(() => {
  const f = { longestFreezeMs: 0, samplerStallMs: 0, widths: {}, frames: -1, progressAt: 0, sampleAt: 0 };
  window.chorusFrames = f;
  let busy = false;
  setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      let frames = 0, width = 0;
      for (const s of (await window.pc.getStats()).values())
        if (s.type === 'inbound-rtp' && s.kind === 'video') { frames = s.framesDecoded ?? 0; width = s.frameWidth ?? 0; }
      const t = performance.now();
      if (f.sampleAt > 0) f.samplerStallMs = Math.max(f.samplerStallMs, t - f.sampleAt);
      if (frames > f.frames) {
        if (f.progressAt > 0) f.longestFreezeMs = Math.max(f.longestFreezeMs, f.sampleAt - f.progressAt);
        f.frames = frames;
        f.progressAt = t;
      }
      f.sampleAt = t;
      f.widths[width] = (f.widths[width] ?? 0) + 1;
    } finally {
      busy = false;
    }
  }, 50);
})()`;

/** The sampler's figures, a stretch still frozen at the end included. */
const FRAMES_SEEN = `(() => {
  const f = window.chorusFrames;
  return { longestFreezeMs: Math.max(f.longestFreezeMs, f.sampleAt - f.progressAt), samplerStallMs: f.samplerStallMs, widths: f.widths };
})()`;
const haveTools = hasTool('chromium', 'chromium') && hasTool('nft', 'nftables') && hasTool('tc', 'iproute2');

describe.runIf(haveTools && canShapeLinks())('simulcast subscribers on a constrained and a free link', () => {
  let link: ShapedLink;
  let server: TestServer;
  let host: TestBrowser;
  let behind: TestBrowser;
  let relay: DelayUdpRelay;
  let relayPort: number;
  const delayMs = 80;

  beforeAll(async () => {
    link = createShapedLink();
    link.shape({ rateKbit: 500, lossPercent: 2 });
    const udpPort = await freeUdpPort();
    server = await startTestServer({
      webrtc: { udpPort, bindAddress: link.hostAddress, peerTimeoutSeconds: 20 },
    });
    relay = new DelayUdpRelay({
      bindAddress: link.hostAddress,
      serverAddress: link.hostAddress,
      serverPort: udpPort,
      toClientMs: delayMs,
      toServerMs: delayMs,
    });
    relayPort = await relay.start();
    host = await launchChromium();
    behind = await launchChromium([], link.chromium);
  }, 60_000);
  afterAll(async () => {
    await behind?.close();
    await host?.close();
    await server?.close();
    relay?.close();
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
    await subscribeVideo(slow, async (offer) =>
      answerThroughRelay(
        relayPort,
        link.hostAddress,
      )(await sfu.subscribe(room, asUserId('slow'), asUserId('pub'), offerWithoutCandidates(offer))),
    );

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
    // The constrained subscriber's media crosses the relay (and so the shaped pair): its
    // selected pair's remote end is the relay. (Its local end shows as the relay's address
    // too: the SFU answers the relayed STUN checks with the address it saw, as behind a NAT.)
    const selectedRemote = (): Promise<string | undefined> =>
      slow.evaluate<string | undefined>(`(async () => {
      const stats = await window.pc.getStats();
      for (const s of stats.values()) {
        if (s.type !== 'candidate-pair' || !s.nominated || s.state !== 'succeeded') continue;
        const remote = stats.get(s.remoteCandidateId);
        return remote && remote.address + ':' + remote.port;
      }
      return undefined;
    })()`);
    await expect
      .poll(selectedRemote, { timeout: 30_000, interval: 250 })
      .toBe(`${link.hostAddress}:${relayPort}`);
    // The free leg reaches the top layer (it starts there; on a loaded box a stall may
    // have sent it down first, and a try up brings it back).
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
    // Over the window, each subscriber page samples its own getStats every 50 ms: the
    // width it decodes and the longest stretch it saw without a new decoded frame
    // (Chromium's own freeze stats give only a count and a total). Sampled in the page,
    // not from here: on the loaded box this process's round trips to two browsers stall
    // for up to a second, which would read as a freeze of both legs at once.
    await Promise.all([slow, free].map((page) => page.evaluate(SAMPLE_FRAMES)));
    const slow0 = (await receivedVideo(slow))!;
    const free0 = (await receivedVideo(free))!;
    const top0 = await top();
    const start = Date.now();
    await eventually(async () => Date.now() - start >= WINDOW_MS, WINDOW_MS + 20_000, 'the measuring window');
    const [slowSeen, freeSeen] = await Promise.all(
      [slow, free].map((page) => page.evaluate<FramesSeen>(FRAMES_SEEN)),
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
      received: b.packetsReceived - a.packetsReceived,
      nacks: b.nackCount - a.nackCount,
    });
    const share = (seen: FramesSeen, low: boolean): number => {
      const all = Object.values(seen.widths).reduce((x, y) => x + y, 0);
      const some = Object.entries(seen.widths)
        .filter(([w]) => Number(w) < 1280 === low)
        .reduce((x, [, n]) => x + n, 0);
      return Number((some / Math.max(1, all)).toFixed(2));
    };
    const report = {
      delayMs,
      relayed: { toClient: relay.toClient, toServer: relay.toServer },
      slow: {
        ...delta(slow0, slow1),
        longestFreezeMs: Math.round(slowSeen!.longestFreezeMs),
        samplerStallMs: Math.round(slowSeen!.samplerStallMs),
        widths: slowSeen!.widths,
        lowLayerShare: share(slowSeen!, true),
      },
      free: {
        ...delta(free0, free1),
        longestFreezeMs: Math.round(freeSeen!.longestFreezeMs),
        samplerStallMs: Math.round(freeSeen!.samplerStallMs),
        topLayerShare: share(freeSeen!, false),
      },
      topLayerKbps: Math.round(topKbps),
      // What the SFU saw: each layer's measured rate, and each leg's layer and REMB limit.
      sfu: sfuView(),
    };
    const why = JSON.stringify(report);
    // The bar: >= 10 frames/s and no freeze over a second on the constrained link,
    // on a low layer (at least 80 % of the window below the top one: probes up are allowed).
    expect(report.slow.fps, why).toBeGreaterThanOrEqual(10);
    // What the box stalls is not the link's. A freeze the free leg has too (same publisher,
    // same box, no constraint): at load 15-18 both Chromium legs froze ~2 s at once. And a
    // stall of the constrained page's own sampler (its main thread not run) is measured as
    // part of a freeze there: in a CI run with two busy loops its sampler stalled 629 ms and
    // the freeze it was in measured 1,080 ms. The bar rises by the larger of what the free
    // leg's longest freeze passes 500 ms and what the sampler's longest stall passes 250 ms
    // (a sample every 50 ms); on a box that is merely busy it stays 1 s.
    const boxFreezeMs = Math.max(0, report.free.longestFreezeMs - 500, report.slow.samplerStallMs - 250);
    expect(report.slow.longestFreezeMs, why).toBeLessThan(1000 + boxFreezeMs);
    expect(report.slow.lowLayerShare, why).toBeGreaterThanOrEqual(0.8);
    // The free one got the top layer (waited for above, before the window). Staying there
    // is not asked: on the loaded 2-core box its own Chromium stalls, its REMB falls and it
    // goes a layer down until a try up of the layer it held brings it back (4 s at the
    // least: docs/sfu.md); its share of the window on 1280 is reported, not required.
    expect(report.free.fps, why).toBeGreaterThanOrEqual(10);
    // The publisher's top layer still goes out at a real rate (Chromium's 1280x720 layer
    // from a fake camera: well over what the constrained link could carry).
    expect(report.topLayerKbps, why).toBeGreaterThan(500);
    process.stdout.write(`constrained vs free link over ${WINDOW_MS / 1000} s: ${why}\n`);
    room.close('test over');
  }, 240_000);
});
