import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { hasTool } from '../fixtures/system-tools.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { startCuttableProxy, type CuttableProxy } from '../fixtures/cuttable-proxy.js';
import {
  buildSdk,
  hasEvent as has,
  openSdkPage,
  sdkCall as call,
  sdkEvents as events,
  sdkReceived as received,
  startPageServer,
  type PageServer,
  type SdkEvents as Events,
  type SdkJoined,
  waitForMedia,
} from '../fixtures/sdk-page.js';

const haveChromium = hasTool('chromium', 'chromium');
const KEY = 'sdk-test';
const SECRET = 'a-secret-for-the-sdk-test-0123456789abcdef';
const ROOM = 'sdk-room';

/** Pings every second and a drop noticed after 4 s of silence, so a blocked socket is found fast. */
const SOCKET_OPTIONS = { pingMs: 1000, silenceMs: 4000 };

const token = (identity: string, ttlSeconds = 600): Promise<string> =>
  createAccessToken(KEY, SECRET, {
    identity,
    room: ROOM,
    grants: { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true },
    ttlSeconds,
  });
describe.runIf(haveChromium)('the SDK in Chromium against a real server', () => {
  let server: TestServer;
  let browser: TestBrowser;
  let proxy: CuttableProxy;
  let pages: PageServer;
  let ada: Page;
  let grace: Page;

  beforeAll(async () => {
    const sdk = buildSdk();
    server = await startTestServer({
      chorus: { apiKeys: [`${KEY}:${SECRET}`] },
      webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
    });
    // Grace's signalling goes through a proxy the test can cut; her media goes straight to the server.
    proxy = await startCuttableProxy(server.url);
    // The page server is also the application's token server (`/token?identity=`).
    pages = await startPageServer(sdk, undefined, (identity) => token(identity));
    browser = await launchChromium();
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await pages?.close();
    await server?.close();
  });

  it('two pages join with tokens, publish camera and microphone, and decode each other', async () => {
    ada = await openSdkPage(browser, pages.url);
    grace = await openSdkPage(browser, pages.url);
    const a = await call<SdkJoined>(ada, 'join', server.url, await token('ada'), SOCKET_OPTIONS);
    expect(a.identity).toBe('ada');
    expect(a.others).toEqual([]);
    expect(a.published.map((p) => [p[0], p[2]]).sort()).toEqual([
      ['audio', 'microphone'],
      ['video', 'camera'],
    ]);
    const g = await call<SdkJoined>(grace, 'join', proxy.url, await token('grace'), SOCKET_OPTIONS);
    expect(g.identity).toBe('grace');
    expect(g.others).toEqual(['ada']);

    // Each decodes the other's video and receives their audio.
    for (const [page, other] of [
      [ada, 'grace'],
      [grace, 'ada'],
    ] as const) {
      await waitForMedia(async () => (await received(page))[other]);
    }
    // The events an application builds on: ada saw grace arrive and publish both tracks.
    const seen = await events(ada);
    expect(has(seen, 'participantJoined', 'grace')).toBe(true);
    expect(has(seen, 'trackPublished', 'grace', 'video', 'camera')).toBe(true);
    expect(has(seen, 'trackPublished', 'grace', 'audio', 'microphone')).toBe(true);
    expect(has(seen, 'trackSubscribed', 'grace', 'video')).toBe(true);
    expect(has(seen, 'trackSubscribed', 'grace', 'audio')).toBe(true);
    expect(has(await events(grace), 'trackSubscribed', 'ada', 'video')).toBe(true);
  }, 120_000);

  it('data round trip: text to everyone, bytes to one identity', async () => {
    await call(grace, 'send', 'hello from grace', { topic: 'chat' });
    await expect
      .poll(async () => has(await events(ada), 'dataReceived', 'grace', 'hello from grace', 'chat'), {
        timeout: 15_000,
      })
      .toBe(true);
    await call(ada, 'send', [0, 1, 2, 254, 255], { to: ['grace'] });
    await expect
      .poll(async () => has(await events(grace), 'dataReceived', 'ada', [0, 1, 2, 254, 255], null), {
        timeout: 15_000,
      })
      .toBe(true);
  }, 60_000);

  it('a muted camera is announced to the other page, and unmuted again', async () => {
    await call(ada, 'setMuted', 'video', true);
    await expect
      .poll(async () => has(await events(grace), 'trackMuted', 'ada', 'video'), { timeout: 15_000 })
      .toBe(true);
    await call(ada, 'setMuted', 'video', false);
    await expect
      .poll(async () => has(await events(grace), 'trackUnmuted', 'ada', 'video'), { timeout: 15_000 })
      .toBe(true);
  }, 60_000);

  it('active speakers are reported (the fake microphone beeps)', async () => {
    await expect
      .poll(
        async () =>
          (await events(ada)).some((e) => e[0] === 'activeSpeakers' && (e[1] as string[]).includes('grace')),
        {
          timeout: 30_000,
          interval: 500,
        },
      )
      .toBe(true);
  }, 60_000);

  it('a dropped signalling socket resumes: the same session, no one left, media flows again', async () => {
    const before = await received(grace);
    const adaBefore = await events(ada);
    proxy.cut();
    await expect.poll(async () => has(await events(grace), 'reconnecting'), { timeout: 15_000 }).toBe(true);
    await expect
      .poll(async () => has(await events(grace), 'reconnected', true), { timeout: 30_000 })
      .toBe(true);
    expect(await call(grace, 'state')).toBe('connected');
    // Media keeps arriving at grace after the resume...
    await expect
      .poll(async () => ((await received(grace)).ada?.frames ?? 0) > (before.ada?.frames ?? 0) + 30, {
        timeout: 30_000,
        interval: 500,
      })
      .toBe(true);
    // ...ada never saw her leave, and the signalling works again both ways.
    const adaAfter = await events(ada);
    expect(adaAfter.slice(adaBefore.length).filter((e) => e[0] === 'participantLeft')).toEqual([]);
    await call(grace, 'send', 'back again');
    await expect
      .poll(async () => has(await events(ada), 'dataReceived', 'grace', 'back again', null), {
        timeout: 15_000,
      })
      .toBe(true);
    const ping = Date.now();
    await call(ada, 'send', `to grace ${ping}`, { to: ['grace'] });
    await expect
      .poll(async () => has(await events(grace), 'dataReceived', 'ada', `to grace ${ping}`, null), {
        timeout: 15_000,
      })
      .toBe(true);
  }, 90_000);

  it('kept away past the resume grace, the page rejoins as a new session and media flows again', async () => {
    const [graceFrom, adaFrom] = [(await events(grace)).length, (await events(ada)).length];
    const since = async (page: Page, from: number): Promise<Events> => (await events(page)).slice(from);
    proxy.refuse(true);
    proxy.cut();
    await expect
      .poll(async () => has(await since(grace, graceFrom), 'reconnecting'), { timeout: 15_000 })
      .toBe(true);
    // The server holds grace's session for its grace period, then she leaves the room.
    await expect
      .poll(async () => has(await since(ada, adaFrom), 'participantLeft', 'grace'), {
        timeout: 60_000,
        interval: 1000,
      })
      .toBe(true);
    expect(has(await since(grace, graceFrom), 'reconnected')).toBe(false);
    proxy.refuse(false);
    // Her next attempt is a fresh join: a new session, tracks published and subscribed again.
    await expect
      .poll(async () => has(await since(grace, graceFrom), 'reconnected', false), {
        timeout: 45_000,
        interval: 500,
      })
      .toBe(true);
    await expect
      .poll(async () => has(await since(ada, adaFrom), 'participantJoined', 'grace'), { timeout: 15_000 })
      .toBe(true);
    for (const [page, other] of [
      [ada, 'grace'],
      [grace, 'ada'],
    ] as const) {
      await expect
        .poll(async () => ((await received(page))[other]?.frames ?? 0) > 10, {
          timeout: 45_000,
          interval: 500,
        })
        .toBe(true);
    }
    expect(await call(grace, 'state')).toBe('connected');
  }, 150_000);

  it('leaving is seen by the other page', async () => {
    await call(grace, 'leave');
    await expect
      .poll(async () => has(await events(ada), 'participantLeft', 'grace'), { timeout: 20_000 })
      .toBe(true);
    expect(has(await events(grace), 'disconnected', 'left')).toBe(true);
  }, 60_000);

  it('a session that outlives its token resumes after a drop with a fresh one (refreshToken)', async () => {
    const linus = await openSdkPage(browser, pages.url);
    const adaFrom = (await events(ada)).length;
    const ttl = 8;
    const expires = Date.now() + ttl * 1000;
    await call(linus, 'join', proxy.url, await token('linus', ttl), {
      ...SOCKET_OPTIONS,
      tokenUrl: `${pages.url}/token?identity=linus`,
    });
    await expect
      .poll(async () => has((await events(ada)).slice(adaFrom), 'participantJoined', 'linus'), {
        timeout: 15_000,
      })
      .toBe(true);
    // Past the first token's expiry the server would refuse it, for a resume too.
    await expect.poll(() => Date.now() > expires + 1000, { timeout: 20_000, interval: 250 }).toBe(true);
    proxy.cut();
    await expect.poll(async () => has(await events(linus), 'reconnecting'), { timeout: 15_000 }).toBe(true);
    await expect
      .poll(async () => has(await events(linus), 'reconnected', true), { timeout: 30_000, interval: 500 })
      .toBe(true);
    expect(has((await events(ada)).slice(adaFrom), 'participantLeft', 'linus')).toBe(false);
    await call(linus, 'leave');
  }, 90_000);
});
