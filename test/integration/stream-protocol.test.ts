import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

let t: TestServer;
const chunk = (n: number, size = 1000): Buffer => Buffer.alloc(size, n % 256);
const open = (path: string): Promise<TestSocket> => TestSocket.open(`${t.wsUrl}${path}`);

async function publisher(channel: string, key = 'key1'): Promise<TestSocket> {
  return open(`/${channel}/${key}/publish`);
}

async function stats(channel: string): Promise<Record<string, number | boolean>> {
  return (await (await fetch(`${t.url}/stream-stats/${channel}`)).json()) as Record<string, number | boolean>;
}

beforeAll(async () => {
  t = await startTestServer({ stream: { maxIpConcurrentConnections: 1000 } });
});
afterAll(async () => {
  await t.close();
});

describe('publish and receive', () => {
  it('fans binary chunks out to every receiver, unchanged and in order', async () => {
    const pub = await publisher('fan');
    const receivers = await Promise.all([1, 2, 3].map(() => open('/fan/key1/receive')));
    for (let i = 0; i < 50; i++) pub.ws.send(chunk(i, 100 + i));
    for (const r of receivers) {
      const got = await r.binaryCount(50);
      expect(got.map((b) => b.length)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
      expect(got.every((b, i) => b.equals(chunk(i, 100 + i)))).toBe(true);
    }
    pub.close();
    for (const r of receivers) expect(await r.closed).toEqual({ code: 1000, reason: 'stream ended' });
  });

  it('ignores the query string when routing', async () => {
    const pub = await publisher('query');
    const r = await open('/query/key1/receive?token=abc&x=1');
    pub.ws.send(chunk(1));
    await r.binaryCount(1);
    pub.close();
  });

  it('refuses a second publisher with 403 Already publishing.', async () => {
    const pub = await publisher('twice');
    expect(await TestSocket.refusal(`${t.wsUrl}/twice/other/publish`)).toEqual({
      status: 403,
      body: 'Already publishing.',
    });
    pub.close();
    await pub.closed;
    // Once the first has gone, the channel is free again.
    await eventually(async () => (await stats('twice')).publishing === false);
    const again = await publisher('twice', 'newkey');
    again.close();
  });

  it('a receiver with the wrong key gets ERROR: Invalid streaming key and a close', async () => {
    const pub = await publisher('keyed', 'right');
    const r = await open('/keyed/wrong/receive');
    expect(await r.next()).toBe('ERROR: Invalid streaming key');
    expect(await r.closed).toEqual({ code: 1008, reason: 'Invalid streaming key' });
    pub.close();
  });

  it('receivers that come before the publisher wait, and start (or are refused) when it arrives', async () => {
    const early = await open('/early/key1/receive');
    const wrong = await open('/early/nope/receive');
    const earlyProbe = await open('/early/key1/probe');
    expect((await stats('early')).receivers).toBe(3);
    const pub = await publisher('early');
    expect(await wrong.next()).toBe('ERROR: Invalid streaming key');
    pub.ws.send(chunk(7));
    pub.ws.send(chunk(8));
    expect((await early.binaryCount(2)).map((b) => b[0])).toEqual([7, 8]);
    expect(await earlyProbe.closed).toEqual({ code: 1000, reason: 'probe done' });
    expect(earlyProbe.binaries.map((b) => b[0])).toEqual([7]);
    pub.close();
  });

  it('sends the text heartbeat and keeps text from clients as keep-alive only', async () => {
    const hb = await startTestServer({ stream: { heartbeatSeconds: 1 } });
    try {
      const pub = await TestSocket.open(`${hb.wsUrl}/hb/k/publish`);
      const r = await TestSocket.open(`${hb.wsUrl}/hb/k/receive`);
      pub.send('this is not media, just text garbage {{{');
      pub.ws.send(chunk(1));
      expect(await r.next((m) => m === 'h', 10_000)).toBe('h');
      expect((await r.binaryCount(1))[0]!.equals(chunk(1))).toBe(true);
      expect(r.binaries).toHaveLength(1);
      pub.close();
    } finally {
      await hb.close();
    }
  });

  it('closes connections that send nothing past the idle timeout', async () => {
    const idle = await startTestServer({ stream: { idleTimeoutSeconds: 1, heartbeatSeconds: 60 } });
    try {
      const r = await TestSocket.open(`${idle.wsUrl}/quiet/k/receive`);
      expect(await r.closed).toEqual({ code: 1001, reason: 'idle timeout' });
    } finally {
      await idle.close();
    }
  });
});

describe('the cache', () => {
  it('replays everything since publishing began to a late receiver, then goes live', async () => {
    const pub = await publisher('late');
    for (let i = 0; i < 5; i++) pub.ws.send(chunk(i));
    await eventually(async () => (await stats('late')).cacheChunks === 5);
    const r = await open('/late/key1/receive');
    await r.binaryCount(5);
    pub.ws.send(chunk(5));
    expect((await r.binaryCount(6)).map((b) => b[0])).toEqual([0, 1, 2, 3, 4, 5]);
    expect((await stats('late')).cacheBytes).toBe(6 * (1000 + 16));
    pub.close();
  });

  it('receive-clear-cache replays, then empties and disables the cache for the session', async () => {
    const pub = await publisher('clear');
    for (let i = 0; i < 3; i++) pub.ws.send(chunk(i));
    await eventually(async () => (await stats('clear')).cacheChunks === 3);
    const encoder = await open('/clear/key1/receive-clear-cache');
    await encoder.binaryCount(3);
    expect(await stats('clear')).toMatchObject({ cacheChunks: 0, cacheBytes: 0 });
    pub.ws.send(chunk(3));
    await encoder.binaryCount(4);
    const later = await open('/clear/key1/receive');
    pub.ws.send(chunk(4));
    expect((await later.binaryCount(1)).map((b) => b[0])).toEqual([4]);
    expect((await stats('clear')).cacheChunks).toBe(0);
    pub.close();
    await pub.closed;
    // A new publishing session caches again.
    await eventually(async () => (await stats('clear')).publishing === false);
    const pub2 = await publisher('clear');
    pub2.ws.send(chunk(9));
    await eventually(async () => (await stats('clear')).cacheChunks === 1);
    pub2.close();
  });

  it('probe delivers exactly the first cached chunk and closes', async () => {
    const pub = await publisher('probed');
    for (let i = 0; i < 3; i++) pub.ws.send(chunk(i + 20));
    await eventually(async () => (await stats('probed')).cacheChunks === 3);
    const probe = await open('/probed/key1/probe');
    expect(await probe.closed).toEqual({ code: 1000, reason: 'probe done' });
    expect(probe.binaries.map((b) => b[0])).toEqual([20]);
    pub.close();
  });

  it('is bounded in bytes, dropping the oldest chunks first', async () => {
    const small = await startTestServer({ stream: { gopCacheSizeMb: 1 } });
    try {
      const pub = await TestSocket.open(`${small.wsUrl}/bounded/k/publish`);
      for (let i = 0; i < 5; i++) pub.ws.send(chunk(i, 300 * 1024));
      const s = async () =>
        (await (await fetch(`${small.url}/stream-stats/bounded`)).json()) as Record<string, number>;
      await eventually(async () => (await s()).chunksIn === 5);
      expect(await s()).toMatchObject({ cacheChunks: 3, cacheBytes: 3 * (300 * 1024 + 16) });
      const r = await TestSocket.open(`${small.wsUrl}/bounded/k/receive`);
      expect((await r.binaryCount(3)).map((b) => b[0])).toEqual([2, 3, 4]);
      pub.close();
    } finally {
      await small.close();
    }
  });

  it('GOP_CACHE_SIZE_MB=0 disables it', async () => {
    const none = await startTestServer({ stream: { gopCacheSizeMb: 0 } });
    try {
      const pub = await TestSocket.open(`${none.wsUrl}/nocache/k/publish`);
      pub.ws.send(chunk(1));
      const r = await TestSocket.open(`${none.wsUrl}/nocache/k/receive`);
      pub.ws.send(chunk(2));
      expect((await r.binaryCount(1)).map((b) => b[0])).toEqual([2]);
      const stat = (await (await fetch(`${none.url}/stream-stats/nocache`)).json()) as Record<string, number>;
      expect(stat.cacheChunks).toBe(0);
      pub.close();
    } finally {
      await none.close();
    }
  });
});

describe('bad input', () => {
  it('refuses bad ids and kinds before the upgrade with the original texts', async () => {
    const cases: Array<[string, number, string]> = [
      ['/Upper/key/receive', 404, 'Invalid channel.'],
      ['/ch/Key/receive', 404, 'Invalid key.'],
      ['/ch.x/key/receive', 404, 'Invalid channel.'],
      ['/ch/k%20y/receive', 404, 'Invalid key.'],
      [`/${'c'.repeat(129)}/key/receive`, 404, 'Invalid channel.'],
      [`/ch/${'k'.repeat(129)}/receive`, 404, 'Invalid key.'],
      ['/ch/key/watch', 404, 'Invalid connection kind.'],
    ];
    for (const [path, status, body] of cases) {
      expect(await TestSocket.refusal(`${t.wsUrl}${path}`), path).toEqual({ status, body });
    }
    // 128 characters is allowed.
    const ok = await open(`/${'c'.repeat(128)}/key/receive`);
    ok.close();
  });

  it('honours ID_MAX_LENGTH', async () => {
    const short = await startTestServer({ stream: { idMaxLength: 4 } });
    try {
      expect(await TestSocket.refusal(`${short.wsUrl}/abcde/k/receive`)).toEqual({
        status: 404,
        body: 'Invalid channel.',
      });
      const ok = await TestSocket.open(`${short.wsUrl}/abcd/k/receive`);
      ok.close();
    } finally {
      await short.close();
    }
  });

  it('closes a receiver that sends binary data with 1003, the stream goes on', async () => {
    const pub = await publisher('rxbin');
    const bad = await open('/rxbin/key1/receive');
    const good = await open('/rxbin/key1/receive');
    bad.ws.send(Buffer.from('not allowed'));
    expect(await bad.closed).toEqual({ code: 1003, reason: 'receivers cannot send binary data' });
    pub.ws.send(chunk(1));
    await good.binaryCount(1);
    pub.close();
  });

  it('answers a plain GET (no upgrade) with 426', async () => {
    const res = await fetch(`${t.url}/plain/key1/receive`);
    expect(res.status).toBe(426);
  });

  it('survives abrupt disconnects of publishers and receivers', async () => {
    const pub = await publisher('abrupt');
    const r1 = await open('/abrupt/key1/receive');
    const r2 = await open('/abrupt/key1/receive');
    r1.ws.terminate();
    pub.ws.send(chunk(1));
    await r2.binaryCount(1);
    pub.ws.terminate();
    expect((await r2.closed).code).toBe(1000);
    await eventually(async () => (await stats('abrupt')).publishing === false);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const again = await publisher('abrupt');
    again.close();
  });

  it('closes a publisher that sends a message over STREAM_MAX_MESSAGE_BYTES with 1009', async () => {
    const small = await startTestServer({ stream: { maxMessageBytes: 4096 } });
    try {
      const pub = await TestSocket.open(`${small.wsUrl}/big/k/publish`);
      pub.ws.send(Buffer.alloc(5000));
      expect((await pub.closed).code).toBe(1009);
    } finally {
      await small.close();
    }
  });

  it('answers / with the banner and serves the test client page', async () => {
    expect(await (await fetch(`${t.url}/`)).text()).toBe('Websocket streaming server - Version 1.0.0');
    expect((await fetch(`${t.url}/stream/`)).status).toBe(200);
    const off = await startTestServer({ stream: { disableTestClient: true } });
    try {
      expect((await fetch(`${off.url}/stream/`)).status).toBe(404);
    } finally {
      await off.close();
    }
  });
});

describe('a receiver that stops reading', () => {
  /** A WebSocket client that completes the handshake and then never reads again. */
  function stalledReceiver(url: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => {
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        resolve(ws);
      });
      ws.once('error', reject);
    });
  }

  for (const policy of ['skip', 'close'] as const) {
    it(`does not slow the others, and its queue stays bounded (${policy})`, async () => {
      const limit = 256 * 1024;
      const s = await startTestServer({
        stream: {
          receiverQueueBytes: limit,
          slowReceiver: policy,
          gopCacheSizeMb: 0,
          maxIpConcurrentConnections: 100,
        },
      });
      try {
        const pub = await TestSocket.open(`${s.wsUrl}/bp/k/publish`);
        const stalled = await stalledReceiver(`${s.wsUrl}/bp/k/receive`);
        const fast = await TestSocket.open(`${s.wsUrl}/bp/k/receive`);
        const total = 400;
        const size = 64 * 1024; // 25 MiB in all: far more than the kernel buffers hold
        for (let i = 0; i < total; i++) pub.ws.send(chunk(i, size));
        const got = await fast.binaryCount(total, 20_000);
        expect(got.every((b, i) => b[0] === i % 256 && b.length === size)).toBe(true);
        const channel = s.server.engine.streams.find('bp')!;
        expect(channel.dropped).toBeGreaterThan(0);
        // What waits for the stalled receiver in the server never passes the limit + one chunk.
        expect(channel.maxQueuedBytes()).toBeLessThanOrEqual(limit + size);
        if (policy === 'close') {
          await eventually(() => channel.receiverCount === 1, 5000, 'the slow receiver to be dropped');
        } else {
          expect(channel.receiverCount).toBe(2);
        }
        stalled.terminate();
        pub.close();
      } finally {
        await s.close();
      }
    }, 30_000);
  }
});
