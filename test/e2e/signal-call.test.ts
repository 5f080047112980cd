import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { browserSuite } from '../fixtures/browser.js';

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

describe.runIf(haveChromium)('Signal page in Chromium', () => {
  const suite = browserSuite();

  it('two people register, see each other, and hold a video call through the Signal surface', async () => {
    // Two browser contexts: two people with their own cookie jars.
    const alice = await suite.newPage();
    const bob = await suite.newPage();
    for (const [page, name] of [
      [alice, 'e2e-alice'],
      [bob, 'e2e-bob'],
    ] as const) {
      await page.goto(`${suite.server.url}/signal/`);
      await page.fill('#username', name);
      await page.click('#register');
      await page.waitForSelector(`#status:has-text("connected as ${name}")`);
    }

    // Bob looks Alice up: both pages show the other online.
    await bob.fill('#peer', 'e2e-alice');
    await bob.dispatchEvent('#peer', 'change');
    await bob.waitForSelector('#peer-state:has-text("e2e-alice is online")');
    await alice.waitForSelector('#peer-state:has-text("e2e-bob is online")');

    await bob.click('#call');
    await alice.waitForSelector('#incoming:not(.hidden)');
    await alice.click('#accept');

    // The callee decodes the caller's video (and vice versa).
    await expect.poll(() => framesDecoded(alice), { timeout: 20_000, interval: 250 }).toBeGreaterThan(10);
    await expect.poll(() => framesDecoded(bob), { timeout: 20_000, interval: 250 }).toBeGreaterThan(10);
    mkdirSync('test-artifacts', { recursive: true });
    await alice.screenshot({ path: 'test-artifacts/signal-call.png' });

    await bob.click('#hangup');
    await alice.waitForSelector('#log li:has-text("e2e-bob hung up")');
  }, 60_000);
});
