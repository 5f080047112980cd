import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { RestartableServer } from '../fixtures/restartable-server.js';
import { meetReceived } from '../fixtures/meet-page-stats.js';

const haveChromium = hasTool('chromium', 'chromium');

/** Per remote peer: video frames decoded and audio samples received. */
const received = meetReceived;

/** Media from `from` flows on `page`: video decoded and audio received. */
async function flowing(page: Page, from: string): Promise<void> {
  await expect
    .poll(
      async () => {
        const r = (await received(page))[from];
        return (r?.frames ?? 0) > 10 && (r?.samples ?? 0) > 4800;
      },
      { timeout: 30_000, interval: 500 },
    )
    .toBe(true);
}

const badges = (page: Page, peer: string): Promise<string> =>
  page.$eval(`#tile-${peer} .badges`, (e) => [...e.children].map((c) => c.textContent).join(','));

describe.runIf(haveChromium)('Meet page: remote mute badges and a server restart', () => {
  let server: RestartableServer;
  let chromium: TestBrowser;
  let ada: Page;
  let grace: Page;
  beforeAll(async () => {
    server = await RestartableServer.start({ webrtc: { bindAddress: '127.0.0.1' } });
    chromium = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await chromium?.close();
    await server?.close();
  });

  it('two people meet; muting the microphone or camera shows on the other side', async () => {
    let room = '';
    const pages: Page[] = [];
    for (const name of ['ada', 'grace']) {
      const page = await (await chromium.browser.newContext()).newPage();
      await page.goto(`${server.url}/meet/`);
      // Every status the page ever shows, to check none is a raw error.
      await page.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { seenStatus: string[] }).seenStatus = seen;
        const el = document.getElementById('status')!;
        new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, {
          childList: true,
          characterData: true,
          subtree: true,
        });
      });
      await page.fill('#name', name);
      if (room) await page.fill('#room-id', room);
      await page.click('#join');
      await page.waitForSelector('#in-room:not(.hidden)');
      if (!room) room = decodeURIComponent(/room=([^&]+)/.exec(page.url())![1]!);
      pages.push(page);
    }
    [ada, grace] = pages as [Page, Page];
    await flowing(ada, 'grace');
    await flowing(grace, 'ada');
    expect(await badges(ada, 'grace')).toBe('');

    await grace.click('#toggle-mic');
    await expect.poll(() => badges(ada, 'grace'), { timeout: 10_000 }).toBe('mic off');
    await grace.click('#toggle-cam');
    await expect.poll(() => badges(ada, 'grace'), { timeout: 10_000 }).toBe('mic off,camera off');
    await grace.click('#toggle-mic');
    await grace.click('#toggle-cam');
    await expect.poll(() => badges(ada, 'grace'), { timeout: 10_000 }).toBe('');
  }, 90_000);

  it('the server restarts: "reconnecting...", then both publish and receive again', async () => {
    await server.down();
    for (const page of [ada, grace])
      await page.waitForSelector('#status:has-text("reconnecting...")', { timeout: 15_000 });
    await server.up();
    for (const [page, other] of [
      [ada, 'grace'],
      [grace, 'ada'],
    ] as const) {
      await expect
        .poll(() => page.textContent('#status'), { timeout: 30_000 })
        .toBe(`${other === 'grace' ? 'ada' : 'grace'} · 1 other here`);
      await flowing(page, other);
      const seen = await page.evaluate(() => (window as unknown as { seenStatus: string[] }).seenStatus);
      expect(seen.filter((s) => /error|TypeError|Failed to fetch/i.test(s))).toEqual([]);
    }
  }, 90_000);
});
