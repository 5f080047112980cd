import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { restartableServerAndChromium } from '../fixtures/restartable-server.js';

const haveChromium = hasTool('chromium', 'chromium');

/** Inbound video frames decoded by this page's peer connection, from getStats(). */
async function framesDecoded(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const demo = (window as unknown as { chorusSignalDemo?: { pc: RTCPeerConnection } }).chorusSignalDemo;
    if (!demo) return 0;
    let frames = 0;
    (await demo.pc.getStats()).forEach((s: { type: string; kind?: string; framesDecoded?: number }) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
    });
    return frames;
  });
}

const status = (page: Page): Promise<string> => page.$eval('#status', (e) => e.textContent ?? '');

describe.runIf(haveChromium)('Signal page across a server restart', () => {
  const ctx = restartableServerAndChromium();

  it('the call goes on, the page says reconnecting..., then reconnects with its name and signals again', async () => {
    const pages: Page[] = [];
    for (const name of ['restart-alice', 'restart-bob']) {
      const page = await (await ctx.chromium.browser.newContext()).newPage();
      await page.goto(`${ctx.server.url}/signal/`);
      await page.fill('#username', name);
      await page.click('#register');
      await page.waitForSelector(`#status:has-text("connected as ${name}")`);
      pages.push(page);
    }
    const [alice, bob] = pages as [Page, Page];
    await bob.fill('#peer', 'restart-alice');
    await bob.click('#call');
    await alice.waitForSelector('#incoming:not(.hidden)');
    await alice.click('#accept');
    await expect.poll(() => framesDecoded(alice), { timeout: 20_000, interval: 250 }).toBeGreaterThan(10);

    await ctx.server.down();
    for (const page of [alice, bob]) {
      await page.waitForSelector('#status:has-text("reconnecting...")', { timeout: 10_000 });
      // Still in the call, with its controls: not sent back to "Pick a name".
      expect(await page.isVisible('#hangup')).toBe(true);
      expect(await page.isVisible('#register-card')).toBe(false);
    }
    // Peer to peer, the media does not need the ctx.server.
    const before = await framesDecoded(alice);
    await expect
      .poll(() => framesDecoded(alice), { timeout: 10_000, interval: 250 })
      .toBeGreaterThan(before + 10);

    await ctx.server.up();
    for (const [page, name] of [
      [alice, 'restart-alice'],
      [bob, 'restart-bob'],
    ] as const) {
      await page.waitForSelector('#log li:has-text("reconnected as")', { timeout: 20_000 });
      await expect.poll(() => status(page), { timeout: 10_000 }).toContain(`${name} · call with`);
    }
    // Signalling flows again through the restarted ctx.server.
    await bob.click('#hangup');
    await alice.waitForSelector('#log li:has-text("restart-bob hung up")', { timeout: 10_000 });
  }, 90_000);

  it('a session the server no longer knows is said plainly, and the page asks for a name again', async () => {
    const page = await (await ctx.chromium.browser.newContext()).newPage();
    await page.goto(`${ctx.server.url}/signal/`);
    await page.fill('#username', 'restart-carol');
    await page.click('#register');
    await page.waitForSelector('#status:has-text("connected as restart-carol")');
    // The session cookie is lost meanwhile (as with a server that lost its data directory).
    await page.context().clearCookies();
    await ctx.server.down();
    await page.waitForSelector('#status:has-text("reconnecting...")', { timeout: 10_000 });
    await ctx.server.up();
    await page.waitForSelector('#register-card:not(.hidden)', { timeout: 20_000 });
    expect(await page.textContent('#register-error')).toContain('no longer knows the name "restart-carol"');
  }, 60_000);
});
