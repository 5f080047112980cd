import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { browserSuite } from '../fixtures/browser.js';

const haveChromium = hasTool('chromium', 'chromium');

/**
 * What the Signal seed's own web app (calvinqh/browser-video, web/pages/register.tsx and
 * home.tsx) does, step for step, run in the page: register through `/api/v1/register`
 * and act on a 200 whose body says SUCCESS; read the name from `document.cookie`
 * (`user_username`), and send the user to registration when `/api/v1/user` answers 401.
 */
async function seedApp(page: Page, username: string) {
  return page.evaluate(async (name) => {
    const usernameCookie = () =>
      document.cookie
        .split('; ')
        .find((row) => row.startsWith('user_username='))
        ?.split('=')[1];
    const resp = await fetch('/api/v1/register', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: name }),
    });
    const registered =
      resp.status == 200 ? ((await resp.json()) as { status: string }).status : `http ${resp.status}`;
    // home.tsx: no name cookie -> /register; then GET /api/v1/user, 401 -> /register.
    const cookieName = usernameCookie();
    const user = await fetch('/api/v1/user', {
      method: 'GET',
      headers: { 'Content-Type': 'application/json' },
    });
    const route = !cookieName || user.status == 401 ? '/register' : '/home';
    return { registered, cookieName: cookieName ?? null, userStatus: user.status, route };
  }, username);
}

describe.runIf(haveChromium)("the Signal seed's own web app, in Chromium", () => {
  const suite = browserSuite();

  it('registers, reads its name from document.cookie, stays home; a taken name is a 200 TAKEN', async () => {
    const alice = await suite.newPage();
    await alice.goto(`${suite.server.url}/healthcheck`);
    expect(await seedApp(alice, 'seed-alice')).toEqual({
      registered: 'SUCCESS',
      cookieName: 'seed-alice',
      userStatus: 200,
      route: '/home',
    });
    // The session itself stays out of scripts' reach.
    expect(await alice.evaluate(() => document.cookie)).not.toContain('chorus_session');
    const cookies = await alice.context().cookies();
    expect(cookies.find((c) => c.name === 'chorus_session')?.httpOnly).toBe(true);

    // Someone else asks for the same name: the app reads status TAKEN from a 200 and
    // gets no cookie, so it stays on registration.
    const mallory = await suite.newPage();
    await mallory.goto(`${suite.server.url}/healthcheck`);
    expect(await seedApp(mallory, 'seed-alice')).toEqual({
      registered: 'TAKEN',
      cookieName: null,
      userStatus: 401,
      route: '/register',
    });
  }, 60_000);

  it('sends a user with a name cookie but no session to registration (401), and the cookie is gone after', async () => {
    const page = await suite.newPage();
    await page.goto(`${suite.server.url}/healthcheck`);
    const result = await page.evaluate(async () => {
      document.cookie = 'user_username=seed-ghost; path=/';
      const user = await fetch('/api/v1/user');
      return { status: user.status, cookie: document.cookie };
    });
    // Without the cookie being cleared the app would bounce between /home and /register.
    expect(result).toEqual({ status: 401, cookie: '' });
  }, 60_000);
});
