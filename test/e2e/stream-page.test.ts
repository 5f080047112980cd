import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { hasTool } from '../fixtures/system-tools.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';

const haveChromium = hasTool('chromium', 'chromium');

describe.runIf(haveChromium)('Stream test client in Chromium', () => {
  let t: TestServer;
  let b: TestBrowser;
  beforeAll(async () => {
    t = await startTestServer();
    b = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await t?.close();
  });

  it('one page publishes the fake camera, another plays it back and the video advances', async () => {
    const pub = await (await b.browser.newContext()).newPage();
    const viewer = await (await b.browser.newContext()).newPage();
    await pub.goto(`${t.url}/stream/`);
    await pub.fill('#pub-channel', 'e2e-live');
    await pub.fill('#pub-key', 'k1');
    await pub.click('#pub-start');
    await pub.waitForSelector('#pub-state:has-text("sent")');

    await viewer.goto(`${t.url}/stream/`);
    await viewer.fill('#play-channel', 'e2e-live');
    await viewer.fill('#play-key', 'k1');
    await viewer.click('#play-start');

    const position = () =>
      viewer.evaluate(() => (document.getElementById('player') as HTMLVideoElement).currentTime);
    await expect.poll(position, { timeout: 20_000, interval: 250 }).toBeGreaterThan(1);
    const a = await position();
    await expect.poll(position, { timeout: 10_000, interval: 250 }).toBeGreaterThan(a + 0.5);
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
});
