import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { hasTool } from '../fixtures/system-tools.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { buildSdk, startPageServer, type PageServer } from '../fixtures/sdk-page.js';

const haveChromium = hasTool('chromium', 'chromium');
const KEY = 'dev';
const SECRET = 'a-secret-for-the-quick-start-0123456789abcdef';

/** The page of docs/native-api.md's five-minute start, as printed there (the server's URL set to the test's). */
function quickStartPage(chorusUrl: string): string {
  const doc = readFileSync('docs/native-api.md', 'utf8');
  const start = doc.indexOf('### Two people in a room, from a page');
  const html = /```html\n([\s\S]*?)```/.exec(doc.slice(start))?.[1];
  if (start < 0 || !html) throw new Error('docs/native-api.md has no quick-start page');
  expect(html).toContain("Room.connect('http://localhost:8000', token)");
  return html.replace('http://localhost:8000', chorusUrl);
}

describe.runIf(haveChromium)("docs/native-api.md's quick start, run as written", () => {
  let server: TestServer;
  let web: PageServer;
  let browser: TestBrowser;

  beforeAll(async () => {
    const sdk = buildSdk();
    server = await startTestServer({
      chorus: { apiKeys: [`${KEY}:${SECRET}`] },
      webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
    });
    // What `cp sdk/dist/chorus-sdk.js /tmp/demo/` and `python3 -m http.server` serve.
    const page = quickStartPage(server.url);
    web = await startPageServer(sdk, () => page);
    browser = await launchChromium();
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await server?.close();
  });

  it("two tabs, one token each: each shows the other's camera", async () => {
    const tabs = [];
    for (const identity of ['alice', 'bob']) {
      const token = await createAccessToken(KEY, SECRET, {
        identity,
        room: 'demo',
        grants: { roomJoin: true, canPublish: true, canSubscribe: true },
        ttlSeconds: 600,
      });
      const tab = await (await browser.browser.newContext()).newPage();
      await tab.goto(`${web.url}/?token=${token}`);
      tabs.push({ identity, tab });
    }
    for (const [i, { tab }] of tabs.entries()) {
      const other = tabs[1 - i]!.identity;
      await expect
        .poll(
          () =>
            tab.evaluate((id) => {
              const v = document.getElementById(id) as HTMLVideoElement | null;
              return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
            }, other),
          { timeout: 45_000, interval: 500 },
        )
        .toBeGreaterThan(10);
    }
  }, 120_000);
});
