import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpusDecoder } from '../../src/media/audio/audio-codec.js';
import { dominantFrequency } from '../fixtures/audio.js';
import { BeepVoiceClient } from '../fixtures/beep-client.js';
import { FakePermissions } from '../fixtures/fake-permissions.js';
import { NatsServerProcess } from '../fixtures/nats-server.js';
import { hasTool } from '../fixtures/system-tools.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';

const haveNats = hasTool('nats-server', 'nats-server');

/** The consumers' view: the checked-in schema, read here on its own. */
const schema = protobuf.parse(
  readFileSync(new URL('../../src/api/beep/beep.proto', import.meta.url), 'utf8'),
).root;
const Bite = schema.lookupType('protobuf.Bite');
const Store = schema.lookupType('protobuf.Store');

interface DecodedBite {
  key: string;
  start: number;
  startMs: number;
  durationMs: number;
  data: Uint8Array;
  client: { key: string; client: string };
}

function packetsOf(data: Uint8Array): Uint8Array[] {
  const b = Buffer.from(data);
  const out: Uint8Array[] = [];
  for (let at = 0; at + 2 <= b.length; at += 2 + b.readUInt16BE(at))
    out.push(b.subarray(at + 2, at + 2 + b.readUInt16BE(at)));
  return out;
}

function pcmOf(bite: DecodedBite): Int16Array {
  const decoder = createOpusDecoder();
  const frames = packetsOf(bite.data).map((p) => decoder.decode(p));
  const out = new Int16Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

describe.runIf(haveNats)('Beep bites on NATS', () => {
  const nats = new NatsServerProcess();
  const perms = new FakePermissions();
  let t: TestServer;
  let nc: NatsConnection;
  const bites: DecodedBite[] = [];
  const stores: { type: string; bite: DecodedBite }[] = [];

  beforeAll(async () => {
    await nats.start();
    await perms.start();
    perms.allow('alice', 'standup');
    perms.allow('bob', 'standup');
    t = await startTestServer({
      beep: { permissionsHost: perms.url, nats: nats.url, storeSubjects: ['store', 'new_store'] },
      webrtc: { bindAddress: '127.0.0.1' },
    });
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    nc.subscribe('bite', {
      callback: (_err, msg) => {
        bites.push(Bite.toObject(Bite.decode(msg.data), { longs: Number }) as DecodedBite);
      },
    });
    nc.subscribe('new_store', {
      callback: (_err, msg) => {
        stores.push(
          Store.toObject(Store.decode(msg.data), { longs: Number }) as { type: string; bite: DecodedBite },
        );
      },
    });
    await nc.flush();
  }, 30_000);
  afterAll(async () => {
    await nc?.close();
    await t?.close();
    await perms.stop();
    await nats.stop();
  });

  it('publishes each speaker as ordered 1 s bites that decode to what they said; survives NATS going away', async () => {
    const claim = (userid: string) => ({ 'X-User-Claim': JSON.stringify({ userid, clientid: 'web' }) });
    const alice = new BeepVoiceClient(440);
    const bob = new BeepVoiceClient(1000);
    try {
      for (const [c, user] of [
        [alice, 'alice'],
        [bob, 'bob'],
      ] as const) {
        await c.connect(`${t.url.replace('http', 'ws')}/connect`, 'bare', claim(user));
        expect((await fetch(`${t.url}/join/standup`, { method: 'POST', headers: claim(user) })).status).toBe(
          200,
        );
        c.speak();
      }
      const of = (user: string) => bites.filter((b) => b.client.key === user);
      await eventually(() => of('alice').length >= 3 && of('bob').length >= 3, 15_000, 'three bites each');
      // A whole bite (not the first, which starts mid-second) holds most of its window. On
      // a busy machine the test's own audio thread lags now and then and leaves a bite
      // short, so wait for a whole one rather than judging the first few.
      const whole = (user: string) =>
        of(user)
          .slice(1)
          .find((b) => b.durationMs > 500);
      await eventually(() => !!whole('alice') && !!whole('bob'), 30_000, 'a whole bite each');

      for (const [user, freq] of [
        ['alice', 440],
        ['bob', 1000],
      ] as const) {
        const mine = of(user);
        for (const b of mine) {
          expect(b.key).toBe('standup');
          expect(b.client).toEqual({ key: user, client: 'web' });
          expect(b.startMs % 1000).toBe(0);
          expect(b.start).toBe(b.startMs / 1000);
        }
        // In order, one per second, never two with one start.
        for (let i = 1; i < mine.length; i++) expect(mine[i]!.startMs).toBeGreaterThan(mine[i - 1]!.startMs);
        // A bite never holds more than its window; a whole one holds what was said.
        for (const b of mine) expect(b.durationMs).toBeLessThanOrEqual(1000);
        expect(dominantFrequency(pcmOf(whole(user)!))).toBe(freq);
      }
      expect(stores.length).toBeGreaterThan(0);
      expect(stores[0]!.type).toBe('bite');
      expect(stores[0]!.bite.key).toBe('standup');

      // NATS goes away: audio keeps flowing, bites are counted as dropped.
      await nats.stop();
      const heard = alice.chunks;
      await eventually(
        async () => {
          const m = await (await fetch(`${t.url}/metrics`)).text();
          return Number(/^chorus_sink_messages_dropped_total (\d+)/m.exec(m)?.[1] ?? 0) > 0;
        },
        15_000,
        'dropped bites counted',
      );
      await eventually(() => alice.chunks > heard + 50, 10_000, 'audio still flowing');
      // NATS is back: publishing resumes.
      const before = bites.length;
      await nats.start();
      await eventually(() => bites.length > before + 2, 15_000, 'bites after NATS returns');
      await eventually(() => alice.chunks > heard + 100, 10_000, 'audio still flowing');
    } finally {
      alice.close();
      bob.close();
    }
  }, 90_000);
});

// #12.4: the sink is chosen from the top-level cluster section when Beep's NATS is unset.
describe.runIf(haveNats)('Beep bites with only the cluster NATS set', () => {
  // The cluster's NATS carries the store too (JetStream KV): a cluster node refuses one without it.
  const nats = new NatsServerProcess({ jetstream: true });
  const perms = new FakePermissions();
  let t: TestServer;
  let nc: NatsConnection;
  const bites: DecodedBite[] = [];
  let stored = 0;

  beforeAll(async () => {
    await nats.start();
    await perms.start();
    perms.allow('carol', 'retro');
    t = await startTestServer({
      cluster: { natsUrl: nats.url },
      beep: { permissionsHost: perms.url },
      webrtc: { bindAddress: '127.0.0.1' },
    });
    nc = await connect({ servers: nats.url });
    nc.subscribe('bite', {
      callback: (_err, msg) => {
        bites.push(Bite.toObject(Bite.decode(msg.data), { longs: Number }) as DecodedBite);
      },
    });
    nc.subscribe('store', {
      callback: () => {
        stored++;
      },
    });
    await nc.flush();
  }, 30_000);
  afterAll(async () => {
    await nc?.close();
    await t?.close();
    await perms.stop();
    await nats.dispose();
  });

  it('publishes bites (and their Store copies) on the cluster NATS', async () => {
    expect(t.server.config.sinks.natsUrl).toEqual([nats.url]);
    const claim = { 'X-User-Claim': JSON.stringify({ userid: 'carol', clientid: 'phone' }) };
    const carol = new BeepVoiceClient(440);
    try {
      await carol.connect(`${t.wsUrl}/connect`, 'bare', claim);
      expect((await fetch(`${t.url}/join/retro`, { method: 'POST', headers: claim })).status).toBe(200);
      carol.speak();
      await eventually(() => bites.length >= 2 && stored >= 2, 15_000, 'bites on the cluster NATS');
      expect(bites[0]!.key).toBe('retro');
      expect(bites[0]!.client).toEqual({ key: 'carol', client: 'phone' });
    } finally {
      carol.close();
    }
  }, 60_000);
});
