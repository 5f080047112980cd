import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { startBalancer, type Balancer } from '../fixtures/tcp-balancer.js';
import { startCuttableProxy, type CuttableProxy } from '../fixtures/cuttable-proxy.js';
import { hasTool } from '../fixtures/system-tools.js';
import {
  buildSdk,
  hasEvent as has,
  openSdkPage,
  sdkCall as call,
  sdkEvents as events,
  sdkPageReport,
  sdkReceived as received,
  startPageServer,
  type PageServer,
  type SdkEvents,
  waitForMedia,
} from '../fixtures/sdk-page.js';
import { nativeClusterEnv } from '../fixtures/native-cluster-env.js';
import { sfuNodeReport } from '../fixtures/sfu-node-report.js';

// The browser SDK resuming on another node: grace's network drops (a proxy in front of the
// balancer cuts her socket) and the balancer sends her reconnect to the other node, which
// takes her session over: she resumes (no rejoin), publishes and subscribes again on new
// peer connections, and ada never sees her leave.

const run = hasTool('nats-server', 'nats-server') && hasTool('chromium', 'chromium');
const KEY = 'sdk-resume-cluster';
const SECRET = 'a-secret-for-the-sdk-resume-cluster-test-0123';

const token = (identity: string): Promise<string> =>
  createAccessToken(KEY, SECRET, {
    identity,
    room: 'moving',
    grants: { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true },
    ttlSeconds: 600,
  });

const framesOf = async (page: Page, other: string): Promise<number> =>
  (await received(page))[other]?.frames ?? 0;

describe.runIf(run)('the SDK resuming on another node', () => {
  let cluster: Cluster;
  let balancer: Balancer;
  let proxy: CuttableProxy;
  let backends: string[] = [];
  let browser: TestBrowser;
  let pages: PageServer;

  beforeAll(async () => {
    const sdk = buildSdk();
    cluster = await startCluster({ nodes: 2, env: nativeClusterEnv(KEY, SECRET) });
    balancer = await startBalancer(() => backends);
    proxy = await startCuttableProxy(balancer.url);
    pages = await startPageServer(sdk);
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await pages?.close();
    await proxy?.close();
    await balancer?.close();
    await cluster?.stop();
  });

  it("grace's socket is cut and her reconnect lands on node 0: she resumes there, media flows both ways again, ada sees no leave or join", async () => {
    backends = [new URL(cluster.nodes[1]!.url).host];
    const ada = await openSdkPage(browser, pages.url);
    const grace = await openSdkPage(browser, pages.url);
    const opts = { pingMs: 1000, silenceMs: 4000 };
    await call(ada, 'join', cluster.nodes[0]!.url, await token('ada'), opts);
    await call(grace, 'join', proxy.url, await token('grace'), opts);
    // A failure says what each page had and what each node knew of the media.
    const explain = async (): Promise<string> =>
      [
        await sdkPageReport(ada, 'ada (node 0)'),
        await sdkPageReport(grace, 'grace (node 1)'),
        await sfuNodeReport(cluster.nodes.map((n) => n.url)),
      ].join('\n');
    await waitForMedia(async () => (await received(ada)).grace, 60_000, 10, explain);
    await waitForMedia(async () => (await received(grace)).ada, 60_000, 10, explain);

    const adaFrom = (await events(ada)).length;
    const graceFrom = (await events(grace)).length;
    const since = async (page: Page, from: number): Promise<SdkEvents> => (await events(page)).slice(from);
    backends = [new URL(cluster.nodes[0]!.url).host];
    proxy.cut();
    await expect
      .poll(async () => has(await since(grace, graceFrom), 'reconnecting'), { timeout: 20_000 })
      .toBe(true);
    // Resumed (true), not rejoined: node 0 took the session over from node 1.
    await expect
      .poll(async () => has(await since(grace, graceFrom), 'reconnected', true), {
        timeout: 60_000,
        interval: 500,
      })
      .toBe(true);
    expect(await call(grace, 'state')).toBe('connected');
    const adaAt = await framesOf(ada, 'grace');
    const graceAt = await framesOf(grace, 'ada');
    await expect
      .poll(async () => (await framesOf(ada, 'grace')) > adaAt + 30, { timeout: 60_000, interval: 500 })
      .toBe(true);
    await expect
      .poll(async () => (await framesOf(grace, 'ada')) > graceAt + 30, { timeout: 60_000, interval: 500 })
      .toBe(true);
    // Data still flows both ways over the moved session.
    await call(grace, 'send', 'from node 0 now', { to: ['ada'] });
    await expect
      .poll(async () => has(await events(ada), 'dataReceived', 'grace', 'from node 0 now', null), {
        timeout: 20_000,
      })
      .toBe(true);
    const adaSaw = await since(ada, adaFrom);
    expect(adaSaw.filter((e) => e[0] === 'participantLeft' || e[0] === 'participantJoined')).toEqual([]);
    expect(has(await since(grace, graceFrom), 'reconnected', false)).toBe(false);
    expect(has(await since(grace, graceFrom), 'participantLeft')).toBe(false);
  }, 240_000);
});
