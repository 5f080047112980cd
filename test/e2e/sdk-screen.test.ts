import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Room } from '../../sdk/src/room.js';
import { hasTool } from '../fixtures/system-tools.js';
import { sdkServerAndChromium } from '../fixtures/sdk-env.js';
import {
  hasEvent,
  openSdkPage,
  sdkCall as call,
  sdkEvents as events,
  type SdkJoined,
} from '../fixtures/sdk-page.js';

/**
 * Camera and screen at once through the SDK (#19 items 3-4): a screen share publishes on
 * its own peer connection next to the camera's, and another page decodes both, each on
 * its own publication (the camera 320 wide, the "screen" a 640-wide canvas).
 */

const haveChromium = hasTool('chromium', 'chromium');
const ROOM = 'screen-room';

/** Publishes a 640x360 canvas, repainted 15 times a second, as a screen share. */
function shareCanvasScreen(page: Page): Promise<[string, string, string]> {
  return page.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 360;
    const ctx = canvas.getContext('2d')!;
    let n = 0;
    setInterval(() => {
      ctx.fillStyle = `hsl(${(n += 7) % 360} 80% 50%)`;
      ctx.fillRect(0, 0, 640, 360);
      ctx.fillStyle = '#fff';
      ctx.fillText(String(n), 20 + (n % 500), 180);
    }, 66);
    const track = canvas.captureStream(15).getVideoTracks()[0]!;
    const room = (window as unknown as { room: Room }).room;
    const pub = await room.localParticipant.publishTrack(track, { source: 'screen' });
    return [pub.kind, pub.trackId, pub.source] as [string, string, string];
  });
}

/** What `page` decodes of `identity`'s videos, by source: frames decoded and frame width. */
function videosBySource(
  page: Page,
  identity: string,
): Promise<Record<string, { frames: number; width: number }>> {
  return page.evaluate(async (who) => {
    const room = (window as unknown as { room: Room }).room;
    const out: Record<string, { frames: number; width: number }> = {};
    const p = room.participants.get(who);
    for (const pub of p?.tracks.values() ?? []) {
      if (pub.kind !== 'video') continue;
      const stats: RTCStatsReport | undefined = await pub.getStats();
      stats?.forEach((s: { type: string; kind?: string; framesDecoded?: number; frameWidth?: number }) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video')
          out[pub.source] = { frames: s.framesDecoded ?? 0, width: s.frameWidth ?? 0 };
      });
    }
    return out;
  }, identity);
}

describe.runIf(haveChromium)('the SDK publishes camera and screen at once (Chromium)', () => {
  const env = sdkServerAndChromium('sdk-screen');
  const token = (identity: string) => env.token(identity, ROOM);

  it('a screen share goes out next to the camera, and the other page decodes both', async () => {
    const ada = await openSdkPage(env.browser, env.pages.url);
    const grace = await openSdkPage(env.browser, env.pages.url);
    await call<SdkJoined>(ada, 'join', env.server.url, await token('ada'));
    await call<SdkJoined>(grace, 'join', env.server.url, await token('grace'));
    expect(await shareCanvasScreen(ada)).toEqual(['video', 'ada-screen', 'screen']);
    // The camera is still published: the share did not replace it.
    const mine = await ada.evaluate(() =>
      (window as unknown as { room: Room }).room.localParticipant
        .allTracks()
        .map((p) => p.trackId)
        .sort(),
    );
    expect(mine).toEqual(['ada-audio', 'ada-screen', 'ada-video']);

    let last: Record<string, { frames: number; width: number }> = {};
    await expect
      .poll(
        async () => {
          last = await videosBySource(grace, 'ada');
          return (last.camera?.frames ?? 0) > 10 && (last.screen?.frames ?? 0) > 10;
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe(true)
      .catch(async (err: unknown) => {
        throw new Error(
          `grace decodes ${JSON.stringify(last)}; her events ${JSON.stringify(await events(grace))}; ada's ${JSON.stringify(await events(ada))}`,
          { cause: err },
        );
      });
    const v = await videosBySource(grace, 'ada');
    expect(v.camera?.width).toBe(320);
    expect(v.screen?.width).toBe(640);
    const seen = await events(grace);
    expect(hasEvent(seen, 'trackPublished', 'ada', 'video', 'screen')).toBe(true);
    expect(hasEvent(seen, 'trackUnpublished', 'ada', 'video')).toBe(false);

    // The share stops: its publication goes, the camera keeps decoding.
    await ada.evaluate(async () => {
      const lp = (window as unknown as { room: Room }).room.localParticipant;
      await lp.unpublishTrack(lp.screenTracks.get('video')!.track);
    });
    await expect
      .poll(async () => hasEvent(await events(grace), 'trackUnpublished', 'ada', 'video'), {
        timeout: 30_000,
      })
      .toBe(true);
    const before = (await videosBySource(grace, 'ada')).camera?.frames ?? 0;
    await expect
      .poll(async () => (await videosBySource(grace, 'ada')).camera?.frames ?? 0, {
        timeout: 30_000,
        interval: 500,
      })
      .toBeGreaterThan(before + 15);
  }, 180_000);
});
