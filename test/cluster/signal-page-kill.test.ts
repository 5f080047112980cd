import { get } from 'node:http';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { isRunning, startProcesses, type ChorusProcesses } from '../fixtures/chorus-processes.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';

// Two /signal/ pages in Chromium on `chorus serve --processes 3` (three workers, one
// HTTP port, a nats-server the supervisor starts). The worker holding one page's socket
// is killed with SIGKILL: that page reconnects by itself through the shared port (to a
// live worker) and messages flow both ways again; the other page notices nothing.

const ADMIN = 'signal-kill-admin-token-0123456789';
const run = hasTool('nats-server', 'nats-server') && hasTool('chromium', 'chromium');

interface NodeView {
  id: string;
  load?: { connections: number };
}

let procs: ChorusProcesses;
let chromium: TestBrowser;

async function connectionsByNode(): Promise<Map<string, number>> {
  const res = await fetch(`${procs.url}/cluster/nodes`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const nodes = res.ok ? ((await res.json()) as { nodes: NodeView[] }).nodes : [];
  return new Map(nodes.map((n) => [n.id, n.load?.connections ?? 0]));
}

/** Waits until the nodes' heartbeats (every 2 s) count `total` sockets in all; returns them per node. */
async function socketsCounted(total: number): Promise<Map<string, number>> {
  let last = new Map<string, number>();
  await eventually(
    async () => {
      last = await connectionsByNode();
      return last.size === 3 && [...last.values()].reduce((a, b) => a + b, 0) === total;
    },
    30_000,
    `${total} sockets counted over 3 nodes`,
  );
  return last;
}

async function openSignalPage(name: string): Promise<Page> {
  const page = await (await chromium.browser.newContext()).newPage();
  await page.goto(`${procs.url}/signal/`);
  await page.fill('#username', name);
  await page.click('#register');
  await page.waitForSelector(`#status:has-text("connected as ${name}")`, { timeout: 30_000 });
  return page;
}

/**
 * `from` says hello to `to` (the page's "peer" field); `to` answers hello-ack. Both
 * pages show "<other> is online." only when both messages crossed. Retried: just after a
 * reconnect the new socket's presence may not have reached the bus yet.
 */
async function helloBothWays(from: Page, fromName: string, to: Page, toName: string): Promise<void> {
  await eventually(
    async () => {
      for (const p of [from, to]) await p.$eval('#peer-state', (e) => (e.textContent = ''));
      await from.fill('#peer', toName);
      await from.$eval('#peer', (e) => e.dispatchEvent(new Event('change')));
      try {
        await to.waitForSelector(`#peer-state:has-text("${fromName} is online.")`, { timeout: 2000 });
        await from.waitForSelector(`#peer-state:has-text("${toName} is online.")`, { timeout: 2000 });
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    `${fromName} and ${toName} reaching each other`,
  );
}

/**
 * One request over a connection of its own: the supervisor hands connections to the
 * workers in turn, and a page opens the same number of connections each time, so without
 * this every new page's socket would land on the same worker.
 */
function oneConnection(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    get(`${url}/healthz`, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    }).on('error', reject);
  });
}

const logText = (page: Page): Promise<string> => page.$eval('#log', (e) => e.textContent ?? '');

describe.runIf(run)('/signal/ pages when the worker holding one of them is killed', () => {
  beforeAll(async () => {
    procs = await startProcesses(3, { ADMIN_TOKEN: ADMIN, SIGNAL_REGISTER_RATE_PER_MINUTE: '0' });
    chromium = await launchChromium();
  }, 200_000);

  afterAll(async () => {
    await chromium?.close();
    await procs?.stop();
  }, 30_000);

  it('that page reconnects by itself and messages flow both ways again; the other page notices nothing', async () => {
    const stamp = Date.now();
    const alice = `kill-alice-${stamp}`;
    await socketsCounted(0);
    const alicePage = await openSignalPage(alice);
    const aliceNode = [...(await socketsCounted(1))].find(([, n]) => n === 1)![0];

    // Bob on another worker than Alice's: a page whose socket lands on hers is closed and another opened.
    let bob = '';
    let bobPage: Page | undefined;
    for (let attempt = 0; attempt < 8 && !bobPage; attempt++) {
      bob = `kill-bob-${stamp}-${attempt}`;
      const page = await openSignalPage(bob);
      const counts = await socketsCounted(2);
      if (counts.get(aliceNode) === 1) bobPage = page;
      else {
        await page.context().close();
        await socketsCounted(1);
        await oneConnection(procs.url);
      }
    }
    expect(bobPage, 'a page on another worker than alice').toBeDefined();
    const bobP = bobPage!;
    await helloBothWays(alicePage, alice, bobP, bob);

    const index = Number(aliceNode.slice(aliceNode.lastIndexOf('-') + 1));
    const victim = procs.workerPid(index)!;
    process.kill(victim, 'SIGKILL');
    await eventually(() => !isRunning(victim), 10_000, 'the worker gone');

    await alicePage.waitForSelector('#log li:has-text("lost the server")', { timeout: 10_000 });
    // Generous: the page retries with backoff up to 8 s while the dead worker's presence
    // lapses, and a loaded 2-core box stretches each step. Its log says why if it fails.
    await alicePage
      .waitForSelector(`#log li:has-text("reconnected as ${alice}")`, { timeout: 60_000 })
      .catch(async (err: unknown) => {
        const why = `${await logText(alicePage)} / status: ${await alicePage.textContent('#status')}`;
        throw new Error(`alice's page did not reconnect: ${why}`, { cause: err });
      });
    await expect
      .poll(() => alicePage.textContent('#status'), { timeout: 10_000 })
      .toBe(`connected as ${alice}`);

    await helloBothWays(bobP, bob, alicePage, alice);
    await helloBothWays(alicePage, alice, bobP, bob);

    // Bob's socket never closed: no loss, no reconnect, the same status all along.
    const bobLog = await logText(bobP);
    expect(bobLog).not.toContain('lost the server');
    expect(bobLog).not.toContain('reconnected');
    expect(await bobP.textContent('#status')).toBe(`connected as ${bob}`);
    // Alice reconnected once, with her name (the session cookie works on any worker).
    expect((await logText(alicePage)).match(/reconnected as/g)).toHaveLength(1);
  }, 240_000);
});
