import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { browserSuite } from '../fixtures/browser.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { eventually } from '../fixtures/ws-client.js';
import {
  publishCamera,
  receivedVideo,
  sentVideo,
  subscribeCamera,
  type CodecFilter,
  type Exchange,
} from '../fixtures/codec-pages.js';
import { asUserId } from '../../src/core/ids.js';
import { asRoomId } from '../../src/core/room-types.js';
import { isChorusError } from '../../src/core/errors.js';

// Chromium publishes with its video restricted to one codec (setCodecPreferences), so the
// room's codec is that one; a Chromium subscriber offering everything it decodes must be
// answered with it and decode it. What Chromium 156 offers to send: VP8, H.264 (42001f,
// 42e01f, 4d001f, each packetization mode 0 and 1), VP9 profiles 0 and 2, AV1 profile 0.

const haveChromium = hasTool('chromium', 'chromium');

describe.runIf(haveChromium)('SFU codecs per room, Chromium to Chromium', () => {
  const suite = browserSuite(async () => ({
    // VP8 first, as by default: each room below still gets the codec its first publisher sends.
    webrtc: {
      udpPort: await freeUdpPort(),
      bindAddress: '127.0.0.1',
      videoCodecs: ['VP8', 'H264', 'VP9', 'AV1'],
    },
  }));

  // A page of the server's: a secure context (loopback), where getUserMedia exists.
  const open = async (): Promise<Page> => {
    const page = await suite.newPage();
    await page.goto(`${suite.server.url}/healthz`);
    return page;
  };

  /**
   * Runs a page's exchange against the engine; says why the engine refused (the error's
   * code, reason and message, as the surfaces map it to a 400), or 'answered'.
   */
  const refusal = async (run: (exchange: Exchange) => Promise<void>, call: Exchange): Promise<string> => {
    let error: unknown;
    const exchange: Exchange = async (offer) => {
      try {
        return await call(offer);
      } catch (err) {
        error = err;
        throw err;
      }
    };
    await run(exchange).catch(() => undefined);
    if (isChorusError(error)) return `${error.code}/${String(error.details.reason)}: ${error.message}`;
    return error === undefined ? 'answered' : (error as Error).message;
  };

  const cases: Array<{ codec: CodecFilter; mime: string; fmtp: RegExp }> = [
    {
      codec: { name: 'H264', fmtp: 'packetization-mode=1;profile-level-id=42e01f' },
      mime: 'video/H264',
      fmtp: /profile-level-id=42e01f/,
    },
    {
      codec: { name: 'H264', fmtp: 'profile-level-id=4d001f' },
      mime: 'video/H264',
      fmtp: /profile-level-id=4d001f/,
    },
    { codec: { name: 'VP9', fmtp: 'profile-id=0' }, mime: 'video/VP9', fmtp: /profile-id=0/ },
    { codec: { name: 'AV1' }, mime: 'video/AV1', fmtp: /profile=0|^$/ },
  ];

  for (const { codec, mime, fmtp } of cases) {
    it(`${codec.name} ${codec.fmtp ?? ''}: the room takes the publisher's codec and a subscriber decodes it`, async () => {
      const engine = suite.server.server.engine;
      const id = `codec-${codec.name}-${(codec.fmtp ?? '').replace(/\W/g, '')}`.toLowerCase();
      const room = engine.rooms.open(asRoomId(id), { kind: 'conference', metadata: null });
      const sfu = engine.sfu;
      const publisher = await open();
      await publishCamera(publisher, (offer) => sfu.publish(room, asUserId('pub'), offer), codec);
      await eventually(
        async () => ((await sentVideo(publisher))?.framesEncoded ?? 0) > 10,
        30_000,
        'frames encoded',
      );
      expect((await sentVideo(publisher))?.mimeType).toBe(mime);
      // The room's stats name the codec.
      const tracks = sfu.roomStats(room).publishers[0]!.tracks;
      expect(tracks.find((t) => t.kind === 'video')?.codec).toBe(codec.name);

      // A subscriber offering every codec it decodes is answered with the room's.
      const viewer = await open();
      await subscribeCamera(viewer, (offer) =>
        sfu.subscribe(room, asUserId('viewer'), asUserId('pub'), offer),
      );
      await eventually(
        async () => ((await receivedVideo(viewer))?.framesDecoded ?? 0) > 30,
        30_000,
        'frames decoded',
      );
      const got = (await receivedVideo(viewer))!;
      expect(got.mimeType).toBe(mime);
      expect(got.sdpFmtpLine).toMatch(fmtp);
      expect(got.frameWidth).toBeGreaterThan(0);

      // A second publisher that sends only VP8 is refused with the room's codec named.
      const other = await open();
      expect(
        await refusal(
          (exchange) => publishCamera(other, exchange, { name: 'VP8' }),
          (offer) => sfu.publish(room, asUserId('late'), offer),
        ),
      ).toMatch(new RegExp(`invalid_sdp/room_codec_not_offered: .*${codec.name}`));
      // A subscriber that decodes only VP8 is told it cannot receive the room's video.
      const vp8Only = await open();
      expect(
        await refusal(
          (exchange) => subscribeCamera(vp8Only, exchange, { name: 'VP8' }),
          (offer) => sfu.subscribe(room, asUserId('old'), asUserId('pub'), offer),
        ),
      ).toMatch(new RegExp(`invalid_sdp/codec_not_supported: .*${codec.name}`));
      // The publisher's leg is untouched by both refusals.
      const before = (await receivedVideo(viewer))!.framesDecoded;
      await eventually(
        async () => (await receivedVideo(viewer))!.framesDecoded > before + 15,
        20_000,
        'decoding goes on',
      );
      for (const p of [publisher, viewer, other, vp8Only]) await p.context().close();
      room.close('test over');
    }, 120_000);
  }

  it('a second publisher of a room is answered with the room codec though it prefers another', async () => {
    const engine = suite.server.server.engine;
    const room = engine.rooms.open(asRoomId('codec-follow'), { kind: 'conference', metadata: null });
    const sfu = engine.sfu;
    const first = await open();
    await publishCamera(first, (offer) => sfu.publish(room, asUserId('first'), offer), { name: 'VP9' });
    // The second one offers everything (VP8 first, the server's own first choice too).
    const second = await open();
    await publishCamera(second, (offer) => sfu.publish(room, asUserId('second'), offer));
    await eventually(
      async () => ((await sentVideo(second))?.framesEncoded ?? 0) > 10,
      30_000,
      'second encodes',
    );
    expect((await sentVideo(second))?.mimeType).toBe('video/VP9');
    const viewer = await open();
    await subscribeCamera(viewer, (offer) =>
      sfu.subscribe(room, asUserId('viewer'), asUserId('second'), offer),
    );
    await eventually(
      async () => ((await receivedVideo(viewer))?.framesDecoded ?? 0) > 30,
      30_000,
      'frames decoded',
    );
    expect((await receivedVideo(viewer))?.mimeType).toBe('video/VP9');
    for (const p of [first, second, viewer]) await p.context().close();
    room.close('test over');
  }, 120_000);
});
