import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { hasTool } from '../fixtures/system-tools.js';
import { restartableServerAndChromium } from '../fixtures/restartable-server.js';
import { publishFromPage, watchOnPage } from '../fixtures/stream-page.js';

const haveChromium = hasTool('chromium', 'chromium');

describe.runIf(haveChromium)('Stream page across a server restart', () => {
  const ctx = restartableServerAndChromium();

  it('publisher and viewer say reconnecting..., reconnect, and the video plays again', async () => {
    const pub = await (await ctx.chromium.browser.newContext()).newPage();
    const viewer = await (await ctx.chromium.browser.newContext()).newPage();
    try {
      await restartWhileStreaming(pub, viewer);
    } catch (err) {
      // What each page said (its log and states) is what tells a slow box from a stuck page.
      const said = async (page: Page, name: string): Promise<string> =>
        `${name}: ${await page
          .evaluate(
            () =>
              `pub-state=${document.getElementById('pub-state')?.textContent} ` +
              `play-state=${document.getElementById('play-state')?.textContent} log=` +
              [...document.querySelectorAll('#log li')].map((li) => li.textContent).join(' | '),
          )
          .catch((e: unknown) => `(page unreadable: ${String(e)})`)}`;
      throw new Error(`${String(err)}\n${await said(pub, 'publisher')}\n${await said(viewer, 'viewer')}`, {
        cause: err,
      });
    }
  }, 240_000);

  async function restartWhileStreaming(pub: Page, viewer: Page): Promise<void> {
    await publishFromPage(pub, ctx.server.url, 'restart-live');
    const position = await watchOnPage(viewer, ctx.server.url, 'restart-live');
    await expect.poll(position, { timeout: 20_000, interval: 250 }).toBeGreaterThan(1);

    await ctx.server.down();
    await pub.waitForSelector('#pub-state:has-text("reconnecting...")', { timeout: 10_000 });
    await viewer.waitForSelector('#play-state:has-text("reconnecting...")', { timeout: 10_000 });
    expect(await pub.isVisible('#pub-stop')).toBe(true);
    expect(await viewer.isVisible('#play-stop')).toBe(true);

    await ctx.server.up();
    await pub.waitForSelector('#log li:has-text("publishing again after reconnecting")', { timeout: 30_000 });
    await viewer.waitForSelector('#log li:has-text("watching again after reconnecting")', {
      timeout: 30_000,
    });
    // A fresh stream into a fresh MediaSource: its position starts again and advances.
    await expect.poll(position, { timeout: 20_000, interval: 250 }).toBeGreaterThan(1);
    const a = await position();
    await expect.poll(position, { timeout: 10_000, interval: 250 }).toBeGreaterThan(a + 0.5);
    await expect
      .poll(() => viewer.textContent('#server-figures'), { timeout: 10_000 })
      .toMatch(/live · 1 receivers/);

    // Stop means stop: no reconnecting after the user's own close.
    await viewer.click('#play-stop');
    await viewer.waitForSelector('#play-start:not(.hidden)');
  }
});
