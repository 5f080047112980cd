import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { browserSuite } from '../fixtures/browser.js';
import { joinFromPage, receivedAudio } from '../fixtures/beep-page.js';
import { FakePermissions } from '../fixtures/fake-permissions.js';
import { hasTool } from '../fixtures/system-tools.js';

const haveChromium = hasTool('chromium', 'chromium');
const SECRET = 'e2e-secret-for-beep-tokens';

/** Audio received, from getStats (the fake microphone beeps). */
const received = receivedAudio;

describe.runIf(haveChromium)('Beep in Chromium', () => {
  const perms = new FakePermissions();
  beforeAll(async () => {
    await perms.start();
    perms.allow('ada', 'standup');
    perms.allow('linus', 'standup');
  });
  afterAll(() => perms.stop());
  // Registered after the hook above, so the permissions service is up first.
  const suite = browserSuite(async () => {
    return {
      beep: { permissionsHost: perms.url, tokenSecret: SECRET },
      webrtc: { bindAddress: '127.0.0.1' },
    };
  });

  it('two pages connect and join one conversation; each receives the other’s audio', async () => {
    const token = (userid: string) =>
      new SignJWT({ userid, clientid: 'browser' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(SECRET));
    const pages: Page[] = [];
    for (const user of ['ada', 'linus']) {
      const page = await suite.newPage();
      await page.goto(`${suite.server.url}/healthz`);
      await joinFromPage(page, await token(user));
      pages.push(page);
    }
    for (const page of pages) {
      await expect
        .poll(async () => (await received(page)).samples, { timeout: 15_000 })
        .toBeGreaterThan(48_000);
      await expect.poll(async () => (await received(page)).energy, { timeout: 15_000 }).toBeGreaterThan(0);
    }
  }, 60_000);
});
