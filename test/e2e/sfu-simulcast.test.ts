import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { browserSuite } from '../fixtures/browser.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { eventually } from '../fixtures/ws-client.js';
import {
  inboundVideo,
  outboundByRid,
  publishSimulcast,
  setActiveLayers,
  subscribeVideo,
} from '../fixtures/simulcast-pages.js';
import { asUserId } from '../../src/core/ids.js';
import { asRoomId } from '../../src/core/room-types.js';
import type { LayersWanted } from '../../src/media/webrtc/layers-wanted.js';

const haveChromium = hasTool('chromium', 'chromium');

describe.runIf(haveChromium)('SFU simulcast with Chromium', () => {
  const suite = browserSuite(async () => ({
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
  }));

  it('takes three rid layers; each subscriber gets the layer it asked for, and switches without a freeze', async () => {
    const engine = suite.server.server.engine;
    const room = engine.rooms.open(asRoomId('simulcast'), { kind: 'conference', metadata: null });
    const sfu = engine.sfu;
    const wanted: LayersWanted[] = [];
    const off = sfu.layersWanted.on((e) => wanted.push(e));

    // A page of the server's: a secure context (loopback), where getUserMedia exists.
    const open = async (): Promise<Page> => {
      const page = await suite.newPage();
      await page.goto(`${suite.server.url}/healthz`);
      return page;
    };
    const publisher = await open();
    await publishSimulcast(publisher, (offer) => sfu.publish(room, asUserId('ada'), offer));
    // Chromium sends all three layers, at 320, 640 and 1280 pixels wide.
    await eventually(
      async () => {
        const out = await outboundByRid(publisher);
        return out.q?.frameWidth === 320 && out.h?.frameWidth === 640 && out.f?.frameWidth === 1280;
      },
      30_000,
      'three layers sent',
    );

    const subscribers: Page[] = [];
    for (const user of ['low', 'high']) {
      const page = await open();
      await subscribeVideo(page, (offer) => sfu.subscribe(room, asUserId(user), asUserId('ada'), offer));
      subscribers.push(page);
    }
    const [low, high] = subscribers as [Page, Page];
    // The "low" subscriber shows the video 320 pixels wide: the layer of that size is enough.
    expect(
      sfu.setLayerPreference(room, asUserId('low'), asUserId('ada'), { maxWidth: 320, maxHeight: 0 }),
    ).toBe(true);
    await eventually(async () => (await inboundVideo(low))?.frameWidth === 320, 30_000, 'low layer decoded');
    await eventually(
      async () => (await inboundVideo(high))?.frameWidth === 1280,
      30_000,
      'top layer decoded',
    );

    // Up to the top layer: decoding goes on through the switch, no gap of a second.
    expect(
      sfu.setLayerPreference(room, asUserId('low'), asUserId('ada'), { maxWidth: 0, maxHeight: 0 }),
    ).toBe(true);
    let last = (await inboundVideo(low))!;
    let lastChange = Date.now();
    let longestFreeze = 0;
    await eventually(
      async () => {
        const now = await inboundVideo(low);
        if (!now) return false;
        if (now.framesDecoded > last.framesDecoded) {
          longestFreeze = Math.max(longestFreeze, Date.now() - lastChange);
          lastChange = Date.now();
        }
        last = now;
        return now.frameWidth === 1280;
      },
      30_000,
      'the switch to the top layer',
    );
    // And some more frames after it, still flowing.
    const after = last.framesDecoded;
    await eventually(
      async () => {
        const now = (await inboundVideo(low))!;
        if (now.framesDecoded > last.framesDecoded) {
          longestFreeze = Math.max(longestFreeze, Date.now() - lastChange);
          lastChange = Date.now();
        }
        last = now;
        return now.framesDecoded > after + 30;
      },
      30_000,
      'frames after the switch',
    );
    expect(longestFreeze).toBeLessThan(1000);

    // Both show it small: only q is wanted; the publisher told so pauses h and f, and both
    // subscribers go on decoding q.
    const lastWanted = (): string =>
      (wanted.at(-1)?.layers ?? []).map((l) => `${l.name}:${l.wanted ? 'on' : 'off'}`).join(' ');
    for (const user of ['low', 'high'])
      sfu.setLayerPreference(room, asUserId(user), asUserId('ada'), { maxWidth: 320, maxHeight: 180 });
    await eventually(() => lastWanted() === 'q:on h:off f:off', 10_000, 'only q wanted');
    expect(wanted.at(-1)).toMatchObject({ room: 'simulcast', publisher: 'ada', track: 'ada-video' });
    expect(sfu.layersWanted.current('simulcast', 'ada-video')).toEqual(wanted.at(-1));
    await setActiveLayers(publisher, { h: false, f: false });
    await eventually(
      async () => {
        const out = await outboundByRid(publisher);
        return out.h?.active === false && out.f?.active === false && out.q?.active === true;
      },
      10_000,
      'h and f paused at the publisher',
    );
    for (const page of [low, high]) {
      const before = (await inboundVideo(page))!.framesDecoded;
      await eventually(
        async () => {
          const now = (await inboundVideo(page))!;
          return now.frameWidth === 320 && now.framesDecoded > before + 30;
        },
        30_000,
        'q decoded with h and f paused',
      );
    }
    // One wants it large again: every layer is wanted; resumed, it gets the top one.
    sfu.setLayerPreference(room, asUserId('high'), asUserId('ada'), { maxWidth: 0, maxHeight: 0 });
    await eventually(() => lastWanted() === 'q:on h:on f:on', 10_000, 'all layers wanted again');
    await setActiveLayers(publisher, { h: true, f: true });
    await eventually(async () => (await inboundVideo(high))?.frameWidth === 1280, 30_000, 'top layer again');
    expect((await inboundVideo(low))?.frameWidth).toBe(320);

    // Wrong ids and sizes.
    expect(
      sfu.setLayerPreference(room, asUserId('nobody'), asUserId('ada'), { maxWidth: 1, maxHeight: 1 }),
    ).toBe(false);
    expect(() =>
      sfu.setLayerPreference(room, asUserId('low'), asUserId('ada'), { maxWidth: -1, maxHeight: 0 }),
    ).toThrow(/whole pixels/);
    off();
  }, 240_000);

  it('refuses rid simulcast sharing its connection with audio, whose layers libdatachannel would drop', async () => {
    const { sfu, rooms } = suite.server.server.engine;
    const room = rooms.open(asRoomId('simulcast-with-audio'), { kind: 'conference', metadata: null });
    const page = await suite.newPage();
    await page.goto(`${suite.server.url}/healthz`);
    const offer = await page.evaluate<string>(`(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
      const pc = new RTCPeerConnection();
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly' });
      pc.addTransceiver(stream.getVideoTracks()[0], {
        direction: 'sendonly',
        sendEncodings: [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }],
      });
      await pc.setLocalDescription(await pc.createOffer());
      return pc.localDescription.sdp;
    })()`);
    await expect(sfu.publish(room, asUserId('ada'), offer)).rejects.toMatchObject({
      code: 'invalid_sdp',
      details: { reason: 'simulcast_needs_own_connection' },
    });
    expect(sfu.isPublishing(room, asUserId('ada'))).toBe(false);
  }, 60_000);
});
