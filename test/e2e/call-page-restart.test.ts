import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { callPagesInRoom, callPageState, hearingAudio, openCallPage } from '../fixtures/call-page.js';
import { hasTool } from '../fixtures/system-tools.js';
import { restartableServerAndChromium } from '../fixtures/restartable-server.js';

const haveChromium = hasTool('chromium', 'chromium');

const state = callPageState;
const status = (page: Page): Promise<string> => page.$eval('#status', (e) => e.textContent ?? '');

// Generous: on a loaded 2-core box a page can take 20 s and more to decode its first audio.
const hearing = (page: Page) => hearingAudio(page, 45_000);

describe.runIf(haveChromium)('Call page across a server restart', () => {
  const ctx = restartableServerAndChromium();

  const person = (name: string) => openCallPage(ctx.chromium.browser, ctx.server.url, name);

  it('a group room: the page says reconnecting..., rejoins the room and its audio resumes', async () => {
    const names = ['Ada', 'Grace', 'Linus'];
    const pages = await callPagesInRoom(names, 'standup', person);
    for (const [i, page] of pages.entries()) {
      // Who is in the room, by the names they picked.
      await expect
        .poll(async () => (await state(page)).members.sort(), { timeout: 15_000 })
        .toEqual(names.map((n, j) => (i === j ? `${n} (you)` : n)).sort());
      await hearing(page);
    }

    await ctx.server.down();
    for (const page of pages) {
      await page.waitForSelector('#status:has-text("reconnecting...")', { timeout: 10_000 });
      expect((await state(page)).stats).toBeUndefined(); // no stale "3 in the room" with dead audio
    }
    await ctx.server.up();
    for (const page of pages) {
      await expect.poll(() => status(page), { timeout: 30_000 }).toBe('in room standup');
      await hearing(page);
      await expect.poll(async () => (await state(page)).members.length, { timeout: 15_000 }).toBe(3);
    }
  }, 120_000);

  it('a 1:1 call, which the stopping server ends: the page says plainly that it ended', async () => {
    const alice = await person('Alice');
    const bob = await person('Bob');
    const bobId = (await state(bob)).id;
    await alice.fill('#peer-id', bobId);
    await alice.click('#call');
    await bob.waitForSelector('#incoming:not(.hidden)', { timeout: 10_000 });
    // Names, not keys: the key is there on demand.
    expect(await bob.textContent('#incoming-from')).toBe('Alice');
    await bob.click('#accept');
    await alice.waitForSelector('#in-call:not(.hidden)');
    expect(await alice.textContent('#peer-label')).toBe('Bob');
    await hearing(alice);

    await ctx.server.down();
    await alice.waitForSelector('#status:has-text("reconnecting...")', { timeout: 10_000 });
    await ctx.server.up();
    // A stopping server ends its calls (both parties are told), so there is no call to
    // resume: each page says so once it is back, and offers to call again.
    for (const [page, other] of [
      [alice, 'Bob'],
      [bob, 'Alice'],
    ] as const) {
      await expect
        .poll(() => status(page), { timeout: 30_000 })
        .toBe(`reconnected: the call with ${other} ended when the server stopped`);
      expect(await page.isVisible('#dial')).toBe(true);
      expect(await page.isVisible('#in-call')).toBe(false);
    }
  }, 120_000);
});
