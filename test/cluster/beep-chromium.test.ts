import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { joinFromPage, receivedAudio } from '../fixtures/beep-page.js';
import { FakePermissions } from '../fixtures/fake-permissions.js';
import { hasTool } from '../fixtures/system-tools.js';

/*
 * Two Chromium pages, each connected to its own node, in one Beep conversation: each
 * receives the other's voice (Chromium's fake microphone beeps), which only the relay
 * between the nodes can bring (alone on its node, a page hears next to nothing).
 */
const SECRET = 'cluster-secret-for-beep-tokens';
const perms = new FakePermissions();
let cluster: Cluster;
let chromium: TestBrowser;

const token = (userid: string) =>
  new SignJWT({ userid, clientid: 'browser' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));

/** The audio received so far: getStats' energy over duration is its mean square level. */
const loudness = receivedAudio;

const receivedFrom = async (i: number, from: string): Promise<number> =>
  Number(
    new RegExp(`^chorus_beep_relay_received_packets_total\\{from="${from}"\\} (\\d+)`, 'm').exec(
      await (await fetch(`${cluster.nodes[i]!.url}/metrics`)).text(),
    )?.[1] ?? 0,
  );

const enabled = hasTool('nats-server', 'nats-server') && hasTool('chromium', 'chromium');

describe.runIf(enabled)('Beep in Chromium across nodes', () => {
  beforeAll(async () => {
    await perms.start();
    perms.allow('ada', 'standup');
    perms.allow('linus', 'standup');
    cluster = await startCluster({
      nodes: 2,
      env: { PERMISSIONS_HOST: perms.url, BEEP_TOKEN_SECRET: SECRET, WEBRTC_BIND_ADDRESS: '127.0.0.1' },
    });
    chromium = await launchChromium();
  }, 90_000);
  afterAll(async () => {
    await chromium?.close();
    await cluster?.stop();
    await perms.stop();
  });

  it('a page on node 0 and a page on node 1 each receive the other’s voice', async () => {
    const pages: Page[] = [];
    for (const [i, user] of [
      [0, 'ada'],
      [1, 'linus'],
    ] as const) {
      const page = await (await chromium.browser.newContext()).newPage();
      await page.goto(`${cluster.nodes[i]!.url}/healthz`);
      await joinFromPage(page, await token(user));
      pages.push(page);
    }
    // The fake microphone's beeps heard: a mean square level of about 0.2. A page alone
    // hears only its own voice's leftovers below the mix-minus threshold (about 1e-5).
    for (const page of pages)
      await expect
        .poll(
          async () => {
            const { energy, seconds } = await loudness(page);
            return seconds > 1 ? energy / seconds : 0;
          },
          { timeout: 30_000 },
        )
        .toBeGreaterThan(0.01);
    // Each node mixed the other's speaker in from the relay.
    expect(await receivedFrom(0, 'node-1')).toBeGreaterThan(0);
    expect(await receivedFrom(1, 'node-0')).toBeGreaterThan(0);
  }, 90_000);
});
