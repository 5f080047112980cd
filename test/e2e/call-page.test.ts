import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { browserSuite } from '../fixtures/browser.js';
import { hasTool } from '../fixtures/system-tools.js';

const haveChromium = hasTool('chromium', 'chromium');

interface CallState {
  id: string;
  peer: string;
  stats?: { packets: number; decoded: number; level: number };
}

const state = (page: Page) =>
  page.evaluate(() => (window as unknown as { chorusCall: CallState }).chorusCall);
const snapshot = (page: Page) =>
  page.evaluate(() => {
    const c = (window as unknown as { chorusCall: CallState }).chorusCall;
    return { id: c.id, peer: c.peer, stats: c.stats ? { ...c.stats } : undefined };
  });

describe.runIf(haveChromium)('Call page in Chromium', () => {
  const suite = browserSuite();

  it('two browsers sign in with their own keys, call, accept, and hear each other', async () => {
    const pages: Page[] = [];
    for (let i = 0; i < 2; i++) {
      const page = await suite.newPage();
      await page.goto(`${suite.server.url}/call/`);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');
      pages.push(page);
    }
    const [alice, bob] = pages as [Page, Page];
    const bobId = (await state(bob)).id;
    expect(bobId).toMatch(/^0[23][0-9a-f]{64}$/);
    expect((await state(alice)).id).not.toBe(bobId);

    await alice.fill('#peer-id', bobId);
    await alice.click('#call');
    // The whole key handshake runs before Bob's page rings.
    await bob.waitForSelector('#incoming:not(.hidden)', { timeout: 10_000 });
    expect(await bob.textContent('#incoming-verified')).toBe('(key verified)');
    await bob.click('#accept');
    await alice.waitForSelector('#in-call:not(.hidden)');
    await bob.waitForSelector('#in-call:not(.hidden)');

    // Chromium's fake microphone beeps: each side decodes the other's audio, not silence.
    for (const page of [alice, bob]) {
      await page.waitForFunction(
        () => {
          const s = (window as unknown as { chorusCall: CallState }).chorusCall.stats;
          return s !== undefined && s.decoded > 100 && s.level > 0.05;
        },
        undefined,
        { timeout: 15_000 },
      );
    }
    const heard = await snapshot(alice);
    expect(heard.stats!.packets).toBeGreaterThan(100);

    await alice.click('#hang-up');
    await bob.waitForFunction(() => document.getElementById('status')?.textContent === 'call ended');
  }, 60_000);
});
