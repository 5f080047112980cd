import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { hasTool } from '../fixtures/system-tools.js';
import { browserSuite } from '../fixtures/browser.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { waitForMedia } from '../fixtures/sdk-page.js';

const haveChromium = hasTool('chromium', 'chromium');
const KEY = 'meet-test';
const SECRET = 'a-secret-for-the-meet-page-test-0123456789';

/** Per remote identity, video frames decoded and audio samples received, from the SDK room the page exposes. */
function receivedFrom(page: Page): Promise<Record<string, { frames: number; samples: number }>> {
  return page.evaluate(async () => {
    interface Pub {
      getStats(): Promise<RTCStatsReport | undefined>;
    }
    interface Inbound {
      type: string;
      kind?: string;
      framesDecoded?: number;
      totalSamplesReceived?: number;
    }
    const meet = (
      window as unknown as {
        chorusMeet: { room(): { participants: Map<string, { tracks: Map<string, Pub> }> } | undefined };
      }
    ).chorusMeet;
    const out: Record<string, { frames: number; samples: number }> = {};
    for (const [id, p] of meet.room()?.participants ?? []) {
      const r = (out[id] = { frames: 0, samples: 0 });
      for (const pub of p.tracks.values())
        (await pub.getStats())?.forEach((s: Inbound) => {
          if (s.type !== 'inbound-rtp') return;
          if (s.kind === 'video') r.frames += s.framesDecoded ?? 0;
          if (s.kind === 'audio') r.samples += s.totalSamplesReceived ?? 0;
        });
    }
    return out;
  });
}

describe.runIf(haveChromium)(
  'the /meet/ page with an access token (native signalling through the SDK)',
  () => {
    const suite = browserSuite(async () => ({
      chorus: { apiKeys: [`${KEY}:${SECRET}`] },
      webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
    }));
    const token = (identity: string, room = 'standup'): Promise<string> =>
      createAccessToken(KEY, SECRET, {
        identity,
        room,
        grants: { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true },
        ttlSeconds: 600,
      });

    it('two people open /meet/?token=..., see and hear each other, the speaker is outlined, mute shows', async () => {
      const ada = await suite.newPage();
      const grace = await suite.newPage();
      await ada.goto(`${suite.server.url}/meet/?token=${await token('ada')}`);
      await ada.waitForSelector('#in-room:not(.hidden)');
      // The other one pastes her token into the lobby's field instead.
      await grace.goto(`${suite.server.url}/meet/`);
      await grace.click('#token-box summary');
      await grace.fill('#token', await token('grace'));
      await grace.click('#join');
      await grace.waitForSelector('#in-room:not(.hidden)');
      expect(await grace.textContent('#room-label')).toContain('standup');

      for (const [page, other] of [
        [ada, 'grace'],
        [grace, 'ada'],
      ] as const) {
        await waitForMedia(async () => (await receivedFrom(page))[other]);
        await expect.poll(() => page.locator('.tile').count(), { timeout: 10_000 }).toBe(2);
        await expect
          .poll(() => page.locator('.tile .state:not(.hidden)').count(), { timeout: 15_000 })
          .toBe(0);
      }
      await expect.poll(() => ada.textContent('#status'), { timeout: 10_000 }).toBe('ada · 1 other here');

      // Chromium's fake microphone beeps: the other's tile is outlined as speaking at some point.
      await expect
        .poll(() => ada.locator('#tile-grace.speaking').count(), { timeout: 30_000, interval: 200 })
        .toBe(1);
      expect(await ada.textContent('#speaker-note')).toMatch(/measured in this browser|^$/);

      // Grace turns her camera off: ada's tile for her says so, and back.
      await grace.click('#toggle-cam');
      await expect.poll(() => ada.textContent('#tile-grace .badges'), { timeout: 15_000 }).toBe('camera off');
      await expect.poll(() => grace.textContent('#toggle-cam'), { timeout: 15_000 }).toBe('Turn camera on');
      await grace.click('#toggle-cam');
      await expect.poll(() => ada.textContent('#tile-grace .badges'), { timeout: 15_000 }).toBe('');

      // Grace leaves: back in her lobby, and her tile goes from ada's page.
      await grace.click('#leave');
      await grace.waitForSelector('#lobby:not(.hidden)');
      await expect.poll(() => ada.locator('.tile').count(), { timeout: 20_000 }).toBe(1);
    }, 150_000);

    it('a bad token is said plainly and leaves the page in its lobby', async () => {
      const page = await suite.newPage();
      await page.goto(`${suite.server.url}/meet/?token=not-a-jwt`);
      await expect
        .poll(() => page.textContent('#lobby-error'), { timeout: 20_000 })
        .toMatch(/^Could not join with the token: .*refused the access token/);
      expect(await page.isVisible('#lobby')).toBe(true);
    }, 60_000);
  },
);
