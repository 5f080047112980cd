import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { sdkServerAndChromium } from '../fixtures/sdk-env.js';
import { openSdkPage, sdkCall as call, sdkReceived as received, waitForMedia } from '../fixtures/sdk-page.js';

// The SDK's trickle ICE in Chromium: offers go before gathering completes and the
// candidates follow as `trickle` messages (the server's join says it takes them).

const haveChromium = hasTool('chromium', 'chromium');

/** Records every message the page sends on its WebSockets (window.sentMessages). */
async function recordSent(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { sentMessages: unknown[] };
    w.sentMessages = [];
    const proto = WebSocket.prototype;
    const send = Object.getOwnPropertyDescriptor(proto, 'send')!.value as (
      this: WebSocket,
      d: string,
    ) => void;
    proto.send = function (this: WebSocket, data: string) {
      try {
        w.sentMessages.push(JSON.parse(data));
      } catch {
        // not JSON: not ours
      }
      send.call(this, data);
    };
  });
}

type Sent = {
  type: string;
  pc?: string;
  subscription?: string;
  candidate?: string;
  end?: boolean;
  sdp?: string;
};
const sent = (page: Page): Promise<Sent[]> =>
  page.evaluate(() => (window as unknown as { sentMessages: Sent[] }).sentMessages);

describe.runIf(haveChromium)('the SDK trickles ICE in Chromium', () => {
  const env = sdkServerAndChromium('sdk-trickle');
  const token = (room: string, identity: string) => env.token(identity, room);

  it('two pages publish and subscribe with offers sent before gathering and candidates trickled, and decode each other', async () => {
    const ada = await openSdkPage(env.browser, env.pages.url);
    const grace = await openSdkPage(env.browser, env.pages.url);
    for (const p of [ada, grace]) await recordSent(p);
    await call(ada, 'join', env.server.url, await token('trickle-room', 'ada'));
    await call(grace, 'join', env.server.url, await token('trickle-room', 'grace'));
    for (const [page, other] of [
      [ada, 'grace'],
      [grace, 'ada'],
    ] as const)
      await waitForMedia(async () => (await received(page))[other]);
    for (const [page, other] of [
      [ada, 'grace'],
      [grace, 'ada'],
    ] as const) {
      const msgs = await sent(page);
      const publish = msgs.findIndex((m) => m.type === 'publish');
      const trickles = msgs.filter((m) => m.type === 'trickle');
      // Candidates for the publisher PC, after its offer, and the end of them.
      const forMain = msgs.slice(publish).filter((m) => m.type === 'trickle' && m.pc === 'main');
      expect(
        forMain.some((m) => typeof m.candidate === 'string' && m.candidate.startsWith('candidate:')),
      ).toBe(true);
      expect(forMain.some((m) => m.end === true)).toBe(true);
      // ... and for the subscription.
      const forSub = trickles.filter((m) => m.subscription === other);
      expect(forSub.some((m) => typeof m.candidate === 'string')).toBe(true);
      expect(forSub.some((m) => m.end === true)).toBe(true);
      // The offers went before gathering completed: fewer candidates than trickled.
      const offers = msgs.filter((m) => m.type === 'publish' || m.type === 'subscribe') as Array<{
        sdp: string;
      }>;
      const inOffers = offers.reduce((n, o) => n + ((o.sdp ?? '').match(/^a=candidate:/gm)?.length ?? 0), 0);
      expect(inOffers).toBeLessThan(trickles.filter((m) => m.candidate !== undefined).length);
    }
  }, 180_000);

  it('join times with and without trickle ICE (measured, printed)', async () => {
    const times: Record<'trickle' | 'complete', number[]> = { trickle: [], complete: [] };
    for (let i = 0; i < 5; i++) {
      for (const mode of ['trickle', 'complete'] as const) {
        const page = await openSdkPage(env.browser, env.pages.url);
        const t0 = performance.now();
        await call(page, 'join', env.server.url, await token(`measure-${mode}-${i}`, 'solo'), {
          trickleIce: mode === 'trickle',
        });
        times[mode].push(performance.now() - t0);
        await call(page, 'leave');
        await page.context().close();
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    process.stdout.write(
      `SDK join (connect + publish camera and microphone), median of 5: trickle ${median(times.trickle).toFixed(0)} ms, complete offers ${median(times.complete).toFixed(0)} ms; all: ${JSON.stringify(times)}\n`,
    );
    expect(times.trickle).toHaveLength(5);
    expect(times.complete).toHaveLength(5);
  }, 240_000);
});
