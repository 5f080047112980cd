import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { killNode, startCluster, type Cluster } from '../fixtures/cluster.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { startBalancer, type Balancer } from '../fixtures/tcp-balancer.js';
import { hasTool } from '../fixtures/system-tools.js';
import {
  buildSdk,
  hasEvent as has,
  openSdkPage,
  sdkCall as call,
  sdkEvents as events,
  sdkReceived as received,
  startPageServer,
  type PageServer,
  type SdkEvents,
  waitForMedia,
} from '../fixtures/sdk-page.js';
import { nativeClusterEnv } from '../fixtures/native-cluster-env.js';

// The browser SDK on a two-node cluster: two pages whose signalling and media land on
// different nodes see, hear and message each other; when the node holding one of them
// dies, her page comes back through the balancer on the other node by itself.

const run = hasTool('nats-server', 'nats-server') && hasTool('chromium', 'chromium');
const KEY = 'sdk-cluster';
const SECRET = 'a-secret-for-the-sdk-cluster-test-0123456789';

const token = (identity: string): Promise<string> =>
  createAccessToken(KEY, SECRET, {
    identity,
    room: 'across',
    grants: { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true },
    ttlSeconds: 600,
  });

const decodes = (page: Page, other: string): Promise<void> =>
  waitForMedia(async () => (await received(page))[other], 60_000);

describe.runIf(run)('the SDK across nodes', () => {
  let cluster: Cluster;
  let balancer: Balancer;
  let backends: string[] = [];
  let browser: TestBrowser;
  let pages: PageServer;
  let ada: Page;
  let grace: Page;

  beforeAll(async () => {
    const sdk = buildSdk();
    cluster = await startCluster({
      nodes: 2,
      env: nativeClusterEnv(KEY, SECRET),
    });
    balancer = await startBalancer(() => backends);
    pages = await startPageServer(sdk);
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await pages?.close();
    await balancer?.close();
    await cluster?.stop();
  });

  it('ada on node 0 and grace on node 1 decode each other, exchange data and see a mute', async () => {
    backends = [new URL(cluster.nodes[1]!.url).host];
    ada = await openSdkPage(browser, pages.url);
    grace = await openSdkPage(browser, pages.url);
    const opts = { pingMs: 1000, silenceMs: 4000 };
    await call(ada, 'join', cluster.nodes[0]!.url, await token('ada'), opts);
    await call(grace, 'join', balancer.url, await token('grace'), opts);
    await decodes(ada, 'grace');
    await decodes(grace, 'ada');
    await call(grace, 'send', 'hello across', { to: ['ada'] });
    await expect
      .poll(async () => has(await events(ada), 'dataReceived', 'grace', 'hello across', null), {
        timeout: 20_000,
      })
      .toBe(true);
    await call(ada, 'setMuted', 'audio', true);
    await expect
      .poll(async () => has(await events(grace), 'trackMuted', 'ada', 'audio'), { timeout: 20_000 })
      .toBe(true);
    await call(ada, 'setMuted', 'audio', false);
  }, 180_000);

  it("grace's node dies: her page rejoins through the balancer on node 0, and both decode again", async () => {
    const from = (await events(grace)).length;
    const since = async (): Promise<SdkEvents> => (await events(grace)).slice(from);
    backends = [new URL(cluster.nodes[0]!.url).host];
    await killNode(cluster.nodes[1]!.process);
    await expect.poll(async () => has(await since(), 'reconnecting'), { timeout: 20_000 }).toBe(true);
    // Node 1 held her session: node 0 cannot resume it, so she joins afresh there.
    await expect
      .poll(async () => has(await since(), 'reconnected', false), { timeout: 60_000, interval: 500 })
      .toBe(true);
    expect(await call(grace, 'state')).toBe('connected');
    const framesBefore = (await received(ada)).grace?.frames ?? 0;
    await decodes(grace, 'ada');
    await expect
      .poll(async () => ((await received(ada)).grace?.frames ?? 0) > framesBefore + 10, {
        timeout: 60_000,
        interval: 500,
      })
      .toBe(true);
  }, 180_000);
});
