import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { browserSuite } from '../fixtures/browser.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { eventually } from '../fixtures/ws-client.js';
import { meetReceived } from '../fixtures/meet-page-stats.js';

const haveChromium = hasTool('chromium', 'chromium');

/** Per remote peer: video frames decoded and audio samples received. */
const received = meetReceived;

describe.runIf(haveChromium)('Meet page in Chromium', () => {
  const suite = browserSuite(async () => ({
    // A short silence timeout: the call below outlasts it, so a leg whose RTCP the SFU did
    // not see (and would reap as silent) shows up as media that stops.
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1', peerTimeoutSeconds: 3 },
  }));

  it('three people join one room; each decodes video and receives audio from the other two', async () => {
    const names = ['ada', 'grace', 'linus'];
    const pages: Page[] = [];
    let room = '';
    for (const name of names) {
      const page = await suite.newPage();
      pages.push(page);
      await page.goto(`${suite.server.url}/meet/`);
      await page.fill('#name', name);
      if (room) await page.fill('#room-id', room);
      await page.click('#join');
      await page.waitForSelector('#in-room:not(.hidden)');
      if (!room) room = decodeURIComponent(/room=([^&]+)/.exec(page.url())![1]!);
    }
    for (const [i, page] of pages.entries()) {
      const others = names.filter((_, j) => j !== i);
      await expect
        .poll(
          async () => {
            const r = await received(page);
            return others.every((o) => (r[o]?.frames ?? 0) > 10 && (r[o]?.samples ?? 0) > 4800);
          },
          { timeout: 30_000, interval: 500 },
        )
        .toBe(true);
    }
    // Tiles for everyone, none stuck connecting.
    await expect.poll(() => pages[0]!.locator('.tile').count(), { timeout: 5000 }).toBe(3);
    await expect
      .poll(() => pages[0]!.locator('.tile .state:not(.hidden)').count(), { timeout: 10_000 })
      .toBe(0);
    // Past the silence timeout, every leg still flows: Chromium's receiver reports keep them.
    // The timeout's passing is shown, not slept for: a canary leg that connects now (in a
    // room of its own) and sends nothing is closed by the server once the timeout has run
    // out for it, and so for every browser leg too, all of which connected before it.
    const sfu = suite.server.server.engine.sfu;
    const browserLegs = sfu.stats().peers;
    const canaryRoom = (await (
      await fetch(`${suite.server.url}/webrtc/room`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: 'canary' }),
      })
    ).json()) as { id: string };
    const canary = new NdcPublisher();
    try {
      expect((await canary.publish(suite.server.url, canaryRoom.id, 'canary')).status).toBe(200);
      await eventually(() => sfu.stats().peers === browserLegs + 1, 10_000, 'the canary leg');
      await eventually(() => sfu.stats().peers === browserLegs, 30_000, 'the silent canary leg to be closed');
    } finally {
      canary.close();
    }
    // Every browser leg outlived it, and media still flows on each.
    const before = await Promise.all(pages.map((p) => received(p)));
    for (const [i, page] of pages.entries()) {
      await expect
        .poll(
          async () => {
            const now = await received(page);
            return names.filter((_, j) => j !== i).every((o) => now[o]!.frames > before[i]![o]!.frames + 20);
          },
          { timeout: 30_000, interval: 500 },
        )
        .toBe(true);
    }
    expect(sfu.stats().peers).toBe(browserLegs);
    mkdirSync('test-artifacts', { recursive: true });
    await pages[0]!.screenshot({ path: 'test-artifacts/meet-page.png' });

    // One leaves: the others drop their tile.
    await pages[2]!.click('#leave');
    await expect.poll(() => pages[0]!.locator('.tile').count(), { timeout: 30_000 }).toBe(2);
  }, 120_000);
});

describe.runIf(haveChromium)('Meet page when the server is full', () => {
  const suite = browserSuite(async () => ({
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1', peerTimeoutSeconds: 3, maxPeers: 1 },
  }));

  it('says the server is busy, keeps trying, and gets in once there is room', async () => {
    const first = await suite.newPage();
    await first.goto(`${suite.server.url}/meet/`);
    await first.fill('#name', 'ada');
    await first.click('#join');
    await first.waitForSelector('#in-room:not(.hidden)');
    const room = decodeURIComponent(/room=([^&]+)/.exec(first.url())![1]!);

    // The one peer connection allowed is ada's: grace's publish is refused as busy.
    const second = await suite.newPage();
    await second.goto(`${suite.server.url}/meet/`);
    await second.fill('#name', 'grace');
    await second.fill('#room-id', room);
    await second.click('#join');
    await second.waitForSelector('#in-room:not(.hidden)');
    await expect
      .poll(() => second.textContent('#media-error'), { timeout: 15_000 })
      .toMatch(/The server is busy \(peer limit reached \(1 peer connections\)\): trying again in 5 s/);
    await expect
      .poll(() => second.textContent('#tile-ada .state'), { timeout: 15_000 })
      .toBe('server busy, retrying…');

    // Ada leaves; grace's next attempt gets in and her own tile connects.
    await first.click('#leave');
    await expect.poll(() => second.textContent('#media-error'), { timeout: 30_000 }).toBe('');
    await expect
      .poll(() => second.locator('#tile-me .state:not(.hidden)').count(), { timeout: 15_000 })
      .toBe(0);
  }, 90_000);
});
