import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { killNode, startCluster, type Cluster } from '../fixtures/cluster.js';
import { ClusterSockets } from '../fixtures/cluster-sockets.js';
import { nodeMetric } from '../fixtures/node-metric.js';
import { hasTool } from '../fixtures/system-tools.js';
import { startBalancer, type Balancer } from '../fixtures/tcp-balancer.js';
import { TestSocket, eventually, within } from '../fixtures/ws-client.js';
import { publishFromPage, watchOnPage } from '../fixtures/stream-page.js';

/*
 * Issue #15.6 for Stream: a node killed with SIGKILL. The publisher's node: receivers on
 * the other nodes see the stream end as on one node, and the publisher reconnecting
 * through another node publishes again at once (the dead node's claim is taken over).
 * A node with only receivers: nobody else notices. The /stream/ page does its own
 * reconnecting through a load balancer in front of the nodes.
 */
const enabled = hasTool('nats-server', 'nats-server');
const haveChromium = enabled && hasTool('chromium', 'chromium');

let cluster: Cluster;

const sockets = new ClusterSockets(() => cluster);
const open = (i: number, path: string) => sockets.open(i, path);
const metric = (i: number, name: string) => nodeMetric(cluster.nodes[i]!.url, name);
const chunk = (i: number): Buffer => Buffer.alloc(2000 + i, i & 0xff);
/** Opens a publisher on node `i`, trying again while the channel is still held (a claim being freed). */
const publishOn = (i: number, path: string, timeoutMs: number) =>
  sockets.openOnceAccepted(i, path, timeoutMs, `publishing ${path} on node ${i}`);

describe.runIf(enabled)('Stream across nodes when a node is killed', () => {
  beforeAll(async () => {
    cluster = await startCluster({ env: { MAX_IP_CONCURRENT_CONNECTIONS: '100' } });
  }, 90_000);
  afterAll(async () => {
    sockets.terminateAll();
    await cluster?.stop();
  });

  it('a node holding only receivers dies: the publisher and the other nodes carry on, and the dead node is no longer relayed to', async () => {
    const pub = await open(0, '/calm/k/publish');
    const stays = await open(1, '/calm/k/receive');
    const dies = await open(2, '/calm/k/receive');
    await eventually(
      async () => (await metric(0, 'chorus_stream_relay_followers')) === 2,
      15_000,
      'two followers',
    );
    const sent: Buffer[] = [];
    const send = (): void => {
      const c = chunk(sent.length);
      sent.push(c);
      pub.ws.send(c);
    };
    for (let i = 0; i < 5; i++) send();
    await dies.binaryCount(5, 15_000);
    await killNode(cluster.nodes[2]!.process);
    // Chunks keep flowing while node 0 still counts node 2, and after it forgets it.
    const forgotten = eventually(
      async () => (await metric(0, 'chorus_stream_relay_followers')) === 1,
      30_000,
      'node 2 forgotten by the publisher node',
    );
    let done = false;
    void forgotten.then(
      () => (done = true),
      () => (done = true),
    );
    while (!done) {
      send();
      await stays.binaryCount(sent.length, 15_000);
    }
    await forgotten;
    for (let i = 0; i < 5; i++) send();
    await stays.binaryCount(sent.length, 15_000);
    expect(Buffer.concat(stays.binaries).equals(Buffer.concat(sent))).toBe(true);
    expect(pub.ws.readyState).toBe(pub.ws.OPEN);
    expect(stays.ws.readyState).toBe(stays.ws.OPEN);
    expect(await metric(1, 'chorus_stream_relay_gaps_total')).toBe(0);
    pub.close();
    expect(await stays.closed).toEqual({ code: 1000, reason: 'stream ended' });
    await cluster.restart(2);
  }, 120_000);

  it("the publisher's node dies: receivers elsewhere see the stream end, without waiting for anyone to republish", async () => {
    const pub = await open(0, '/lost/k/publish');
    const receivers = [await open(1, '/lost/k/receive'), await open(2, '/lost/k/receive')];
    pub.ws.send(chunk(1));
    for (const r of receivers) await r.binaryCount(1, 15_000);
    await killNode(cluster.nodes[0]!.process);
    for (const r of receivers)
      expect(await within(r.closed, 20_000, 'the stream ended')).toEqual({
        code: 1000,
        reason: 'stream ended',
      });
    await cluster.restart(0);
  }, 120_000);

  it('the publisher reconnects through another node right after its node died, and receivers there and elsewhere get the new stream', async () => {
    const pub = await open(0, '/again/k/publish');
    const old = await open(2, '/again/k/receive');
    pub.ws.send(chunk(1));
    await old.binaryCount(1, 15_000);
    await killNode(cluster.nodes[0]!.process);
    // The dead node's claim is taken over at once (its ping finds no responder): no
    // waiting for membership to call it gone.
    const again = await publishOn(1, '/again/k/publish', 5000);
    expect(await within(old.closed, 15_000, 'the old stream ended')).toEqual({
      code: 1000,
      reason: 'stream ended',
    });
    const fresh = [await open(2, '/again/k/receive'), await open(1, '/again/k/receive')];
    for (let i = 0; i < 3; i++) again.ws.send(chunk(10 + i));
    for (const r of fresh) {
      await r.binaryCount(3, 15_000);
      expect(Buffer.concat(r.binaries).equals(Buffer.concat([10, 11, 12].map(chunk)))).toBe(true);
    }
    again.close();
    await cluster.restart(0);
  }, 120_000);

  it("NATS out of reach: receivers on the publisher's node go on, the others see the stream end; once NATS is back they get it again", async () => {
    const pub = await open(0, '/cut/k/publish');
    const local = await open(0, '/cut/k/receive');
    const remote = await open(1, '/cut/k/receive');
    pub.ws.send(chunk(1));
    await remote.binaryCount(1, 15_000);
    await cluster.nats.stop();
    try {
      expect(await within(remote.closed, 30_000, 'the remote stream ended')).toEqual({
        code: 1000,
        reason: 'stream ended',
      });
      pub.ws.send(chunk(2));
      await local.binaryCount(2, 15_000);
    } finally {
      await cluster.nats.start();
    }
    let again: TestSocket | undefined;
    await eventually(
      async () => {
        const r = await open(1, '/cut/k/receive').catch(() => undefined);
        if (!r) return false;
        pub.ws.send(chunk(3));
        const got = await r.binaryCount(1, 3000).then(
          () => true,
          () => false,
        );
        if (got) again = r;
        else r.ws.terminate();
        return got;
      },
      60_000,
      'node 1 following the channel again',
    );
    // Its own cache replays the stream from the start (no container: everything), then live.
    expect(again!.binaries[0]!.equals(chunk(1))).toBe(true);
    expect(pub.ws.readyState).toBe(pub.ws.OPEN);
    pub.close();
    await local.closed;
  }, 150_000);

  describe.runIf(haveChromium)('the /stream/ page behind a load balancer', () => {
    let balancer: Balancer;
    let chromium: TestBrowser;
    beforeAll(async () => {
      balancer = await startBalancer(() => cluster.nodes.map((n) => n.url));
      chromium = await launchChromium();
    }, 60_000);
    afterAll(async () => {
      await chromium?.close();
      await balancer?.close();
    });

    it("publisher and viewer pages reconnect by themselves when the publisher's node is killed, and the video plays again", async () => {
      const pub = await (await chromium.browser.newContext()).newPage();
      const viewer = await (await chromium.browser.newContext()).newPage();
      await publishFromPage(pub, balancer.url, 'page-live', 20_000);
      const position = await watchOnPage(viewer, balancer.url, 'page-live');
      await expect.poll(position, { timeout: 30_000, interval: 250 }).toBeGreaterThan(1);

      // Kill the node that holds the publisher.
      let holder = -1;
      await eventually(
        async () => {
          for (const i of [0, 1, 2]) if ((await metric(i, 'chorus_stream_publishers')) === 1) holder = i;
          return holder >= 0;
        },
        10_000,
        'the node holding the publisher',
      );
      await killNode(cluster.nodes[holder]!.process);
      await pub.waitForSelector('#log li:has-text("publishing again after reconnecting")', {
        timeout: 30_000,
      });
      await viewer.waitForSelector('#log li:has-text("reconnecting")', { timeout: 30_000 });
      // A fresh stream into a fresh MediaSource: its position starts again and advances.
      await expect
        .poll(() => viewer.textContent('#log'), { timeout: 30_000 })
        .toMatch(/watching again after reconnecting/);
      await expect.poll(position, { timeout: 30_000, interval: 250 }).toBeGreaterThan(1);
      const a = await position();
      await expect.poll(position, { timeout: 15_000, interval: 250 }).toBeGreaterThan(a + 0.5);
      await viewer.click('#play-stop');
      await pub.click('#pub-stop');
    }, 180_000);
  });
});
