import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { callPagesInRoom, callPageState, hearingAudio, openCallPage } from '../fixtures/call-page.js';
import { killNode, startCluster, type Cluster } from '../fixtures/cluster.js';
import { hasTool } from '../fixtures/system-tools.js';
import { startBalancer, type Balancer } from '../fixtures/tcp-balancer.js';

// The /call/ page in Chromium behind a TCP load balancer in front of three nodes: its
// event stream and sockets land on any node; when a node is killed (one carrying some
// of its sockets, then the one mixing the room) the page reconnects by itself through
// the balancer and hears the room again.

let cluster: Cluster;
let balancer: Balancer;
let chromium: TestBrowser;
const dead = new Set<number>();

const state = callPageState;
/** Every status line the page showed since `forget`. */
const statuses = (page: Page): Promise<string[]> =>
  page.evaluate(() => [...(window as unknown as { seen: string[] }).seen]);
const forget = (page: Page): Promise<void> =>
  page.evaluate(() => void ((window as unknown as { seen: string[] }).seen.length = 0));

/** Whether the page went through "reconnecting..." and is back in the room. */
async function rejoined(page: Page): Promise<boolean> {
  const seen = await statuses(page);
  return seen.includes('reconnecting...') && seen.at(-1) === 'in room standup';
}

const hearing = (page: Page) => hearingAudio(page, 30_000);

/** The node whose mixer holds the room (the only one counting it in chorus_voip_rooms). */
async function mixerNode(): Promise<number> {
  for (const [i, n] of cluster.nodes.entries()) {
    if (dead.has(i)) continue;
    const text = await (await fetch(`${n.url}/metrics`)).text();
    if (/^chorus_voip_rooms [1-9]/m.test(text)) return i;
  }
  return -1;
}

async function kill(i: number): Promise<void> {
  dead.add(i);
  await killNode(cluster.nodes[i]!.process);
}

const run = hasTool('nats-server', 'nats-server') && hasTool('chromium', 'chromium');

describe.skipIf(!run)('Call page across a cluster', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    balancer = await startBalancer(() =>
      cluster.nodes.filter((_, i) => !dead.has(i)).map((n) => new URL(n.url).host),
    );
    chromium = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
    await balancer?.close();
    await cluster?.stop();
  });

  async function person(name: string): Promise<Page> {
    const page = await openCallPage(chromium.browser, balancer.url, name);
    await page.evaluate(() => {
      const w = window as unknown as { seen: string[] };
      w.seen = [];
      const el = document.getElementById('status')!;
      new MutationObserver(() => w.seen.push(el.textContent ?? '')).observe(el, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    return page;
  }

  it('rejoins the room through the balancer when a node dies, then when the mixer node dies', async () => {
    const names = ['Ada', 'Grace', 'Linus'];
    const pages = await callPagesInRoom(names, 'standup', person);
    for (const page of pages) {
      await expect.poll(async () => (await state(page)).members.length, { timeout: 20_000 }).toBe(3);
      await hearing(page);
    }
    // Round robin spread the pages' sockets over the three nodes.
    expect(balancer.accepted.size).toBe(3);

    // A node that is not the mixer's: pages with sockets there come back through another.
    const mixer = await mixerNode();
    expect(mixer).toBeGreaterThanOrEqual(0);
    for (const page of pages) await forget(page);
    await kill([0, 1, 2].find((i) => i !== mixer)!);
    await expect
      .poll(async () => (await Promise.all(pages.map(rejoined))).some(Boolean), { timeout: 30_000 })
      .toBe(true);
    for (const page of pages) {
      await expect
        .poll(async () => (await statuses(page)).at(-1) ?? 'in room standup', { timeout: 30_000 })
        .toBe('in room standup');
      await hearing(page);
    }

    // The mixer's node: everyone's audio ends; each page rejoins, and the room opens
    // again on the last node.
    for (const page of pages) await forget(page);
    await kill(mixer);
    for (const page of pages) {
      await expect.poll(() => rejoined(page), { timeout: 40_000 }).toBe(true);
      await hearing(page);
      await expect.poll(async () => (await state(page)).members.length, { timeout: 20_000 }).toBe(3);
    }
    expect(await mixerNode()).toBe([0, 1, 2].find((i) => !dead.has(i)));
  }, 180_000);
});
