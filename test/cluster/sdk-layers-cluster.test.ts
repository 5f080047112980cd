import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken } from '../../src/api/chorus/access-token.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import {
  layersCall as call,
  layersInbound as inbound,
  layersOutbound,
  openLayersPage,
  waitFor as waitUntil,
  waitGrowing,
  waitStill,
} from '../fixtures/layers-page.js';
import { nativeClusterEnv } from '../fixtures/native-cluster-env.js';
import { buildSdk, startPageServer, type PageServer } from '../fixtures/sdk-page.js';
import { hasTool } from '../fixtures/system-tools.js';

// Dynacast across nodes (#18 item 2): ada publishes her simulcast camera through the SDK
// into node 0; bob, on node 1, receives it through the relay. What bob's leg wants travels
// back with node 1's relay interest, so ada's browser pauses the layers bob does not show
// (before, a relayed track kept every layer on) and resumes them when he enlarges it.

const run = hasTool('nats-server', 'nats-server') && hasTool('chromium', 'chromium');
const KEY = 'sdk-layers-cluster';
const SECRET = 'a-secret-for-the-sdk-layers-cluster-test-0123';

const token = (identity: string): Promise<string> =>
  createAccessToken(KEY, SECRET, {
    identity,
    room: 'layers-across',
    grants: { roomJoin: true, canPublish: true, canSubscribe: true },
    ttlSeconds: 600,
  });

describe.runIf(run)('adaptive stream and dynacast across nodes (SDK, Chromium)', () => {
  let cluster: Cluster;
  let browser: TestBrowser;
  let pages: PageServer;

  beforeAll(async () => {
    const sdk = buildSdk();
    cluster = await startCluster({ nodes: 2, env: nativeClusterEnv(KEY, SECRET) });
    pages = await startPageServer(sdk, () => readFileSync('test/e2e/sdk-layers-page.html'));
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await pages?.close();
    await cluster?.stop();
  });

  it('a subscriber on node 1 showing the video small pauses the publisher`s upper layers on node 0; enlarged, they resume', async () => {
    const ada = await openLayersPage(browser, pages.url);
    const bob = await openLayersPage(browser, pages.url);
    await call(ada, 'join', cluster.nodes[0]!.url, await token('ada'), true);
    await call(bob, 'join', cluster.nodes[1]!.url, await token('bob'), false);
    const outbound = () => layersOutbound(ada);
    const report = async (): Promise<string> =>
      JSON.stringify({
        bob: await inbound(bob),
        ada: await outbound(),
        bobSettings: await call(bob, 'settings'),
      });
    const waitFor = (what: string, check: () => Promise<boolean>): Promise<void> =>
      waitUntil(what, check, report);

    await waitFor('ada sends q, h and f', async () => {
      const o = await outbound();
      return ['q', 'h', 'f'].every((rid) => o[rid]?.active === true && o[rid].bytes > 0);
    });
    await waitFor('bob knows ada`s video', () => call<boolean>(bob, 'show', 'ada', 160, 90));
    await waitFor('bob decodes the low layer through the relay', async () => {
      const v = await inbound(bob);
      return v?.width === 320 && v.frames > 10;
    });
    await waitFor('ada pauses h and f (nobody on any node shows them)', async () => {
      const o = await outbound();
      return o.q?.active === true && o.h?.active === false && o.f?.active === false;
    });
    await waitStill(async () => (await outbound()).f?.bytes ?? -2, 'ada`s layer f');

    await call(bob, 'resize', 1280, 720);
    await waitFor('ada resumes f', async () => (await outbound()).f?.active === true);
    await waitGrowing(async () => (await outbound()).f?.bytes ?? -2, 'ada`s layer f');
    await waitFor('bob decodes the top layer', async () => (await inbound(bob))?.width === 1280);

    // Turned off on node 1: bob's leg stops, and only the lowest layer stays on at ada.
    await call(bob, 'setEnabled', false);
    await waitStill(async () => (await inbound(bob))?.bytes ?? -2, 'bob`s video');
    await waitFor('ada keeps q alone', async () => {
      const o = await outbound();
      return o.q?.active === true && o.h?.active === false && o.f?.active === false;
    });
    expect((await outbound()).q?.active).toBe(true);
  }, 300_000);
});
