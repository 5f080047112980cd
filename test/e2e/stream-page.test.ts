import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hasTool } from '../fixtures/system-tools.js';
import { browserSuite } from '../fixtures/browser.js';
import { publishFromPage, watchOnPage } from '../fixtures/stream-page.js';

const haveChromium = hasTool('chromium', 'chromium');

describe.runIf(haveChromium)('Stream test client in Chromium', () => {
  const suite = browserSuite();

  it('one page publishes the fake camera, another plays it back and the video advances', async () => {
    const pub = await suite.newPage();
    const viewer = await suite.newPage();
    await publishFromPage(pub, suite.server.url, 'e2e-live');
    const position = await watchOnPage(viewer, suite.server.url, 'e2e-live');
    // Generous: on a loaded 2-core box Chromium's encoder and the player start slowly.
    await expect.poll(position, { timeout: 60_000, interval: 250 }).toBeGreaterThan(1);
    const a = await position();
    await expect.poll(position, { timeout: 30_000, interval: 250 }).toBeGreaterThan(a + 0.5);
    const size = await viewer.evaluate(() => {
      const v = document.getElementById('player') as HTMLVideoElement;
      return [v.videoWidth, v.videoHeight];
    });
    expect(size[0]).toBeGreaterThan(0);
    await expect
      .poll(() => viewer.textContent('#server-figures'), { timeout: 5000 })
      .toMatch(/live · 1 receivers/);
    mkdirSync('test-artifacts', { recursive: true });
    await viewer.screenshot({ path: 'test-artifacts/stream-page.png' });
  }, 60_000);

  it("plays when the stream's first chunks arrive before the player's MediaSource opens", async () => {
    const pub = await suite.newPage();
    await publishFromPage(pub, suite.server.url, 'e2e-late-open');

    // A busy page: the player's MediaSource opens 2 s late, after the cached header and
    // first clusters have arrived (a CI run's viewer once sat at 0.0 s with 40 chunks).
    const viewer = await suite.newPage();
    await viewer.addInitScript(() => {
      const src = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'src')!;
      Object.defineProperty(HTMLMediaElement.prototype, 'src', {
        ...src,
        set(this: HTMLMediaElement, url: string) {
          if (url.startsWith('blob:')) setTimeout(() => src.set!.call(this, url), 2000);
          else src.set!.call(this, url);
        },
      });
    });
    const position = await watchOnPage(viewer, suite.server.url, 'e2e-late-open');
    await expect.poll(position, { timeout: 60_000, interval: 250 }).toBeGreaterThan(1);
    expect(await viewer.textContent('#log')).toMatch(/playing video\/webm; codecs=/);
  }, 90_000);
});
