import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { ClusterSockets } from '../fixtures/cluster-sockets.js';
import { nodeMetric } from '../fixtures/node-metric.js';
import { hasTool } from '../fixtures/system-tools.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

/*
 * Issue #15.3: a Stream channel published on node 0 and received on nodes 1 and 2. The
 * publisher's node puts each chunk on the bus once; each node with receivers keeps its
 * own cache, so a late joiner there starts on a keyframe (real WebM and MPEG-TS from
 * ffmpeg, decoded by ffmpeg); receivers that came before the publisher start with it.
 */
const run = promisify(execFile);
const enabled = hasTool('nats-server', 'nats-server');
const haveFfmpeg = enabled && hasTool('ffmpeg', 'ffmpeg');

let cluster: Cluster;
let nats: NatsConnection;
let dir: string;

const sockets = new ClusterSockets(() => cluster);
const open = (i: number, path: string) => sockets.open(i, path);
const stats = async (i: number, channel: string): Promise<Record<string, number | boolean>> =>
  (await (await fetch(`${cluster.nodes[i]!.url}/stream-stats/${channel}`)).json()) as Record<
    string,
    number | boolean
  >;
const metric = (i: number, name: string) => nodeMetric(cluster.nodes[i]!.url, name);
const received = (s: TestSocket): number => s.binaries.reduce((n, b) => n + b.length, 0);

/** Deterministic bytes: chunk `i` of a test stream, `size` long. */
const chunkOf = (i: number, size: number): Buffer => {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k += 4096) b[k] = (i * 31 + k) & 0xff;
  if (size >= 4) b.writeUInt32BE(i, 0);
  return b;
};

describe.runIf(enabled)('Stream media across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({ env: { MAX_IP_CONCURRENT_CONNECTIONS: '100' } });
    nats = await connect({ servers: cluster.nats.url, maxReconnectAttempts: -1 });
    dir = mkdtempSync(join(tmpdir(), 'chorus-stream-relay-'));
  }, 90_000);
  afterAll(async () => {
    sockets.terminateAll();
    await nats?.close();
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('receivers on nodes 1 and 2 get every byte in order; each chunk crosses the bus once, however many receivers a node has', async () => {
    const pub = await open(0, '/spread/k/publish');
    const on1 = await Promise.all([1, 1, 1].map((i) => open(i, '/spread/k/receive')));
    const on2 = await Promise.all([2, 2].map((i) => open(i, '/spread/k/receive')));
    await eventually(
      async () => (await metric(0, 'chorus_stream_relay_followers')) === 2,
      15_000,
      'two nodes following',
    );
    const before = {
      sent: await metric(0, 'chorus_stream_relay_sent_chunks_total'),
      got1: await metric(1, 'chorus_stream_relay_received_chunks_total'),
      got2: await metric(2, 'chorus_stream_relay_received_chunks_total'),
    };
    // Sizes across the fragment size (512 KiB) and past NATS's 1 MiB max_payload.
    const sizes = [100, 5000, 70_000, 600_000, 1_600_000, 3, 250_000, 1, 2_500_000, 40];
    const chunks = sizes.map((n, i) => chunkOf(i, n));
    for (const c of chunks) pub.ws.send(c);
    const total = sizes.reduce((a, b) => a + b, 0);
    for (const r of [...on1, ...on2]) {
      await eventually(() => received(r) >= total, 30_000, 'every byte at a receiver');
      expect(r.binaries.length).toBe(chunks.length);
      r.binaries.forEach((b, i) => expect(b.equals(chunks[i]!), `chunk ${i}`).toBe(true));
    }
    // Once per chunk on the publisher's node (not once per receiver, not once per node),
    // and once per chunk into each following node.
    expect((await metric(0, 'chorus_stream_relay_sent_chunks_total')) - before.sent).toBe(chunks.length);
    expect((await metric(1, 'chorus_stream_relay_received_chunks_total')) - before.got1).toBe(chunks.length);
    expect((await metric(2, 'chorus_stream_relay_received_chunks_total')) - before.got2).toBe(chunks.length);
    expect(await metric(1, 'chorus_stream_relay_gaps_total')).toBe(0);
    // The cluster's stats count the publisher's input once and every node's receivers.
    expect(await stats(2, 'spread')).toMatchObject({
      publishing: true,
      receivers: 5,
      chunksIn: chunks.length,
      bytesIn: total,
      nodes: 3,
    });
    // The publisher leaves: receivers on every node see what they see on one node.
    pub.close();
    for (const r of [...on1, ...on2]) expect(await r.closed).toEqual({ code: 1000, reason: 'stream ended' });
    await eventually(
      async () => (await metric(0, 'chorus_stream_relay_followers')) === 0,
      15_000,
      'no followers',
    );
  }, 90_000);

  it('receivers waiting on other nodes before the publisher starts with it; a wrong key is refused when it does', async () => {
    const early = [await open(1, '/early/k/receive'), await open(2, '/early/k/receive')];
    const wrong = await open(2, '/early/nope/receive');
    await eventually(
      async () => (await stats(0, 'early')).receivers === 3,
      15_000,
      'three waiting receivers',
    );
    const pub = await open(0, '/early/k/publish');
    expect(await wrong.closed).toEqual({ code: 1008, reason: 'Invalid streaming key' });
    expect(wrong.messages).toContain('ERROR: Invalid streaming key');
    const chunks = Array.from({ length: 20 }, (_, i) => chunkOf(i, 1000 + i));
    for (const c of chunks) pub.ws.send(c);
    for (const r of early) {
      await r.binaryCount(chunks.length, 20_000);
      expect(Buffer.concat(r.binaries).equals(Buffer.concat(chunks))).toBe(true);
    }
    pub.close();
    for (const r of early) expect(await r.closed).toEqual({ code: 1000, reason: 'stream ended' });
  }, 60_000);

  it('a receiver waiting on node 1 gets the next publisher, wherever it publishes', async () => {
    const first = await open(0, '/next/k/publish');
    const r = await open(1, '/next/k/receive');
    first.ws.send(chunkOf(1, 10));
    await r.binaryCount(1, 15_000);
    first.close();
    expect(await r.closed).toEqual({ code: 1000, reason: 'stream ended' });
    const waiting = await open(1, '/next/k/receive');
    const second = await sockets.openOnceAccepted(
      2,
      '/next/k/publish',
      15_000,
      'the channel free for node 2',
    );
    second.ws.send(chunkOf(2, 20));
    const [got] = await waiting.binaryCount(1, 15_000);
    expect(got!.equals(chunkOf(2, 20))).toBe(true);
    second.close();
    expect(await waiting.closed).toEqual({ code: 1000, reason: 'stream ended' });
  }, 60_000);

  it('malformed relay messages, and well-formed ones from outside the cluster, are dropped and logged; the stream goes on intact', async () => {
    const pub = await open(0, '/rough/k/publish');
    const r = await open(1, '/rough/k/receive');
    const chunks = Array.from({ length: 11 }, (_, i) => chunkOf(i, 3000));
    pub.ws.send(chunks[0]!);
    await r.binaryCount(1, 15_000);
    const droppedBefore = await metric(1, 'chorus_stream_relay_dropped_total');
    const data = 'chorus.stream.channel.rough.data';
    const badChunk = Buffer.alloc(20, 0x09); // kind 9: no such frame
    const short = Buffer.from([1, 0, 0]); // shorter than a chunk header
    for (const bad of ['{{{', JSON.stringify({ t: 'replay', session: -1 }), badChunk, short])
      nats.publish(data, bad);
    nats.publish('chorus.stream.channel.rough.interest', '{"node": 5}');
    nats.publish('chorus.stream.channel.rough.interest', 'not json');
    // Well formed, but from no node of the cluster: no replay for it, no stream ended by it.
    const replays = await metric(0, 'chorus_stream_relay_replays_total');
    const stranger = { node: 'intruder', instance: 'x', key: 'k', session: 77 };
    nats.publish(
      'chorus.stream.channel.rough.interest',
      JSON.stringify({ ...stranger, on: true, synced: null }),
    );
    nats.publish(data, JSON.stringify({ t: 'start', ...stranger }));
    for (const c of chunks.slice(1)) pub.ws.send(c);
    await r.binaryCount(chunks.length, 20_000);
    expect(Buffer.concat(r.binaries).equals(Buffer.concat(chunks))).toBe(true);
    await eventually(
      async () => (await metric(1, 'chorus_stream_relay_dropped_total')) - droppedBefore === 4,
      10_000,
      'four frames dropped on node 1',
    );
    await eventually(
      () =>
        /interest from a node not in the cluster, ignored/.test(cluster.nodes[0]!.process.output()) &&
        /relay frame from a node not in the cluster, ignored/.test(cluster.nodes[1]!.process.output()) &&
        /stream: bus message is not JSON, dropped/.test(cluster.nodes[1]!.process.output()) &&
        /stream: bus message of the wrong shape, dropped/.test(cluster.nodes[0]!.process.output()) &&
        /stream: relay frame of the wrong shape, dropped/.test(cluster.nodes[1]!.process.output()),
      10_000,
      'the drop lines',
    );
    expect(await metric(0, 'chorus_stream_relay_replays_total')).toBe(replays);
    expect(r.ws.readyState).toBe(r.ws.OPEN);
    pub.close();
    await r.closed;
  }, 60_000);

  describe.runIf(haveFfmpeg)('late joiners of real WebM and MPEG-TS', () => {
    const source = [
      '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=8',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=8',
    ]; // prettier-ignore
    const formats = [
      { name: 'webm', args: ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k', '-g', '25', '-c:a', 'libopus', '-f', 'webm'] }, // prettier-ignore
      { name: 'mpegts', args: ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-b:v', '400k', '-g', '25', '-c:a', 'aac', '-f', 'mpegts'] }, // prettier-ignore
    ];

    /** The first decoded video frame of a file, and whatever ffmpeg says decoding all of it. */
    const inspect = async (file: string): Promise<{ first: string; errors: string }> => {
      const probe = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+#1',
        '-show_entries', 'frame=key_frame,pict_type', '-of', 'csv=p=0', file]); // prettier-ignore
      const decode = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
      return { first: probe.stdout.trim().split('\n')[0] ?? '', errors: decode.stderr.trim() };
    };

    for (const format of formats) {
      it(`${format.name}: a late joiner on a following node starts on a keyframe from that node's own cache; one on a new node from the publisher's replay`, async () => {
        const { stdout: media } = await run('ffmpeg', ['-v', 'error', ...source, ...format.args, 'pipe:1'], {
          encoding: 'buffer',
          maxBuffer: 64 << 20,
        });
        const channel = `late-${format.name}`;
        const pub = await open(0, `/${channel}/k/publish`);
        const follower = await open(1, `/${channel}/k/receive`);
        await eventually(
          async () => (await metric(0, 'chorus_stream_relay_followers')) >= 1,
          15_000,
          'node 1 following',
        );
        // Chunks that ignore the container's structure, published up to 70 %, paced by
        // what node 1 has received (as a live source would be).
        const joinAt = Math.floor(media.length * 0.7);
        let at = 0;
        for (let n = 0; at < joinAt; n++) {
          const size = Math.min(700 + ((n * 7919) % 6000), joinAt - at);
          pub.ws.send(media.subarray(at, at + size));
          at += size;
          if (n % 8 === 7) await eventually(() => received(follower) === at, 15_000, 'node 1 caught up');
        }
        await eventually(() => received(follower) === at, 15_000, 'node 1 caught up');
        const replays = await metric(0, 'chorus_stream_relay_replays_total');
        const late1 = await open(1, `/${channel}/k/receive`);
        await eventually(() => late1.binaries.length > 0, 15_000, 'the late joiner on node 1 served');
        // Served by node 1 alone: the publisher's node replayed nothing for it.
        expect(await metric(0, 'chorus_stream_relay_replays_total')).toBe(replays);
        const late2 = await open(2, `/${channel}/k/receive`);
        await eventually(() => late2.binaries.length > 0, 15_000, 'the late joiner on node 2 served');
        expect(await metric(0, 'chorus_stream_relay_replays_total')).toBe(replays + 1);
        pub.ws.send(media.subarray(at));
        await eventually(() => received(follower) === media.length, 30_000, 'the rest at node 1');
        pub.close();
        for (const r of [follower, late1, late2])
          expect(await r.closed).toEqual({ code: 1000, reason: 'stream ended' });

        expect(Buffer.concat(follower.binaries).equals(media)).toBe(true);
        for (const [name, r] of [
          ['node1', late1],
          ['node2', late2],
        ] as const) {
          const file = join(dir, `${channel}-${name}`);
          const bytes = Buffer.concat(r.binaries);
          writeFileSync(file, bytes);
          // Far less than everything: the header and the last group of pictures on.
          expect(bytes.length).toBeLessThan(media.length - at / 2);
          const { first, errors } = await inspect(file);
          expect(first, `${name}'s first frame`).toMatch(/^1,I/);
          expect(errors, `${name} decodes cleanly`).toBe('');
        }
      }, 120_000);
    }
  });
});
