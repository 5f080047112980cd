import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killNode, startCluster, type Cluster } from '../fixtures/cluster.js';
import { hasTool } from '../fixtures/system-tools.js';
import { powerAt, samplesOf, ToneSource } from '../fixtures/audio.js';
import { KeyUser, listenUntil, SseClient, talk, unhex } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';
import { readJson } from '../fixtures/cluster-read.js';

// VOIP across three real Chorus processes sharing one nats-server (bus and store):
// tickets, calls, events and rooms on one node reach users of the others.

/** Short ring timeout, so the ring-out test runs in seconds. */
const RING_SECONDS = 2;

let cluster: Cluster;
let nc: NatsConnection;
const url = (i: number): string => cluster.nodes[i]!.url;
const streams: SseClient[] = [];

/** A user's event stream on node `i`, once its bus subscription is in place (see `ready`). */
async function events(u: KeyUser, i: number, headers: Record<string, string> = {}): Promise<SseClient> {
  const s = await SseClient.open(`${url(i)}/messages?PKey=${u.id}`, headers);
  streams.push(s);
  await s.next('pubkey');
  return s;
}

/** `/newCall` from `c` on node `i` to `e`; the caller's next ticket is kept. */
async function newCall(
  c: KeyUser,
  e: KeyUser,
  challenge = 'c1-challenge',
): Promise<{ status: number; text: string }> {
  await c.getTicket();
  const res = await c.post('/newCall', { Destination: e.id, challenge, signature: c.sign(c.ticket) });
  if (res.status === 200) c.ticket = res.text;
  return res;
}

/** Accepts `c`'s ringing call as `e` (a key-mode accept signs the caller's c3). */
async function handshake(c: KeyUser, e: KeyUser, eEvents: SseClient, cEvents: SseClient): Promise<void> {
  expect((await newCall(c, e, 'c1-challenge')).status).toBe(200);
  expect(unhex((await eEvents.next('newCall', 10_000)).data)).toEqual({
    challenge: 'c1-challenge',
    from: c.id,
  });
  expect(
    (
      await e.post('/answer', {
        Destination: c.id,
        challenge: 'c2-challenge',
        signature: e.sign('c1-challenge'),
      })
    ).status,
  ).toBe(200);
  const answer = unhex((await cEvents.next('answer', 10_000)).data);
  expect(KeyUser.verify(e.id, 'c1-challenge', answer.answer as string)).toBe(true);
  expect(
    (
      await c.post('/answer2', {
        Destination: e.id,
        challenge: 'c3-challenge',
        signature: c.sign('c2-challenge'),
      })
    ).status,
  ).toBe(200);
  await eEvents.next('answer2', 10_000);
  expect((await e.post('/acceptCall', { From: c.id, signature: e.sign('c3-challenge') })).status).toBe(200);
  expect(unhex((await cEvents.next('acceptedCall', 10_000)).data).from).toBe(e.id);
}

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('VOIP across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({ env: { VOIP_RING_TIMEOUT_SECONDS: String(RING_SECONDS) } });
    nc = await natsConnect({ servers: cluster.nats.url });
  }, 60_000);

  afterAll(async () => {
    for (const s of streams) s.close();
    await nc?.close();
    await cluster?.stop();
  });

  it('verifies on one node a ticket issued by another, and spends it once cluster-wide', async () => {
    const c = new KeyUser(url(0));
    const e = new KeyUser(url(1));
    const ticket = await c.getTicket();
    const signature = c.sign(ticket);
    const form = { Destination: e.id, challenge: 'x1-challenge', signature };
    // Issued on node 0, spent on node 1; the same signature is refused on node 2.
    const first = await c.at(url(1)).post('/newCall', form);
    expect(first.status).toBe(200);
    expect(first.text).toMatch(/^[a-zA-Z]{8}$/);
    const again = await c.at(url(2)).post('/newCall', form);
    expect(again.status).toBe(403);
    // The fresh ticket /newCall returned on node 1 opens a media route on node 0 (one use).
    const next = first.text;
    const q = new URLSearchParams({ PKey: c.id, Signature: c.sign(next), otherID: e.id, format: 'wav' });
    const res = await fetch(`${url(0)}/joinCall?${q.toString()}`, { method: 'POST' });
    // The call rings (not accepted): "call not found", not a bad signature.
    expect([res.status, await res.text()]).toEqual([404, 'call not found\n']);
  });

  it('rings a callee whose event stream is on another node; the handshake crosses all three', async () => {
    const c = new KeyUser(url(0));
    const e = new KeyUser(url(2));
    const [cEvents, eEvents] = await Promise.all([events(c, 1), events(e, 2)]);
    // Placed on node 0, answered on node 2, answer2 on node 0, accepted on node 1.
    const e1 = e.at(url(1));
    expect((await newCall(c, e)).status).toBe(200);
    expect(unhex((await eEvents.next('newCall', 10_000)).data).from).toBe(c.id);
    expect(
      (
        await e.post('/answer', {
          Destination: c.id,
          challenge: 'c2-challenge',
          signature: e.sign('c1-challenge'),
        })
      ).status,
    ).toBe(200);
    await cEvents.next('answer', 10_000);
    expect(
      (
        await c.post('/answer2', {
          Destination: e.id,
          challenge: 'c3-challenge',
          signature: c.sign('c2-challenge'),
        })
      ).status,
    ).toBe(200);
    await eEvents.next('answer2', 10_000);
    expect((await e1.post('/acceptCall', { From: c.id, signature: e1.sign('c3-challenge') })).status).toBe(
      200,
    );
    const accepted = unhex((await cEvents.next('acceptedCall', 10_000)).data);
    expect(KeyUser.verify(e.id, 'c3-challenge', accepted.answer as string)).toBe(true);
    // Accepting again (from yet another node) finds no ringing call.
    expect(
      (await e.at(url(0)).post('/acceptCall', { From: c.id, signature: e.sign('c3-challenge') })).status,
    ).toBe(404);
    // Hung up from node 2 (neither the owner nor where the caller listens): both are told.
    expect((await c.at(url(2)).post('/endCall', { Destination: e.id })).status).toBe(200);
    expect(unhex((await cEvents.next('endCall', 10_000)).data).from).toBe(e.id);
    expect(unhex((await eEvents.next('endCall', 10_000)).data).from).toBe(c.id);
    expect((await c.at(url(1)).post('/endCall', { Destination: e.id })).status).toBe(404);
  });

  it('declines from another node than the owner', async () => {
    const c = new KeyUser(url(1));
    const e = new KeyUser(url(0));
    const [cEvents, eEvents] = await Promise.all([events(c, 2), events(e, 0)]);
    expect((await newCall(c, e)).status).toBe(200);
    await eEvents.next('newCall', 10_000);
    // Wrong parties and ids, on a node that does not hold the call: refused, the call rings on.
    const stranger = new KeyUser(url(2));
    expect((await c.at(url(2)).post('/acceptCall', { From: e.id, signature: 'ab'.repeat(40) })).status).toBe(
      404,
    );
    expect((await stranger.post('/acceptCall', { From: c.id, signature: 'ab'.repeat(40) })).status).toBe(404);
    expect((await stranger.post('/endCall', { Destination: c.id })).status).toBe(404);
    expect(await e.at(url(2)).post('/rejectCall', { From: 'not-a-key' })).toEqual({
      status: 400,
      text: 'bad From\n',
    });
    expect(await e.at(url(2)).post('/endCall', { Destination: '04zz' })).toEqual({
      status: 400,
      text: 'bad Destination\n',
    });
    await e.post('/answer', {
      Destination: c.id,
      challenge: 'c2-challenge',
      signature: e.sign('c1-challenge'),
    });
    await c.post('/answer2', {
      Destination: e.id,
      challenge: 'c3-challenge',
      signature: c.sign('c2-challenge'),
    });
    expect((await e.post('/rejectCall', { From: c.id, signature: e.sign('c3-challenge') })).status).toBe(200);
    const declined = unhex((await cEvents.next('declineCall', 10_000)).data);
    expect(KeyUser.verify(e.id, 'c3-challenge', declined.answer as string)).toBe(true);
    // The pair is free: a new call rings at once, from a third node.
    expect((await newCall(c.at(url(2)), e, 'again-challenge')).status).toBe(200);
    expect(unhex((await eEvents.next('newCall', 10_000)).data).challenge).toBe('again-challenge');
  });

  it('rings out once cluster-wide: each party gets one declineCall', async () => {
    const c = new KeyUser(url(0));
    const e = new KeyUser(url(1));
    // Each party has a stream on every node: the ring-out must still arrive once per stream.
    const cStreams = await Promise.all([0, 1, 2].map((i) => events(c, i)));
    const eStreams = await Promise.all([0, 1, 2].map((i) => events(e, i)));
    expect((await newCall(c, e, 'ring-out')).status).toBe(200);
    for (const s of [...cStreams, ...eStreams]) await s.next('declineCall', RING_SECONDS * 1000 + 10_000);
    // A later call is the marker: by the time its newCall arrives, a second ring-out
    // (from another node's timer) would have arrived before it.
    expect((await newCall(c.at(url(2)), e, 'marker')).status).toBe(200);
    for (const s of eStreams) {
      await s.next('newCall', 10_000);
      expect(s.events.filter((ev) => ev.event === 'declineCall')).toHaveLength(0);
    }
    await c.at(url(2)).post('/endCall', { Destination: e.id });
    for (const s of cStreams) {
      await s.next('endCall', 10_000);
      expect(s.events.filter((ev) => ev.event === 'declineCall')).toHaveLength(0);
    }
  }, 30_000);

  it('keeps one live call per pair cluster-wide: two nodes placing it at once give one call', async () => {
    const a = new KeyUser(url(0));
    const b = new KeyUser(url(1));
    const [aEvents, bEvents] = await Promise.all([events(a, 2), events(b, 2)]);
    await Promise.all([a.getTicket(), b.getTicket()]);
    const [ab, ba] = await Promise.all([
      a.post('/newCall', { Destination: b.id, challenge: 'from-a', signature: a.sign(a.ticket) }),
      b.post('/newCall', { Destination: a.id, challenge: 'from-b', signature: b.sign(b.ticket) }),
    ]);
    expect([ab.status, ba.status]).toEqual([200, 200]);
    // Both rang (one briefly).
    expect(unhex((await bEvents.next('newCall', 10_000)).data).challenge).toBe('from-a');
    expect(unhex((await aEvents.next('newCall', 10_000)).data).challenge).toBe('from-b');
    // Exactly one of the two rings (its callee can accept it); the other was replaced.
    const accepts = await Promise.all([
      b.at(url(2)).post('/acceptCall', { From: a.id, signature: b.sign('from-a') }),
      a.at(url(2)).post('/acceptCall', { From: b.id, signature: a.sign('from-b') }),
    ]);
    expect(accepts.map((r) => r.status).sort()).toEqual([200, 404]);
    // The replaced one ended for both parties.
    await aEvents.next('endCall', 10_000);
    await bEvents.next('endCall', 10_000);
    // A third call, from another node, replaces the survivor: both hear endCall again.
    expect((await newCall(a.at(url(2)), b, 'third')).status).toBe(200);
    await aEvents.next('endCall', 10_000);
    await bEvents.next('endCall', 10_000);
    expect(unhex((await bEvents.next('newCall', 10_000)).data).challenge).toBe('third');
  });

  it('carries call media between parties on nodes other than the owner; nobody hears themself', async () => {
    const c = new KeyUser(url(0));
    const e = new KeyUser(url(0));
    const [cEvents, eEvents] = await Promise.all([events(c, 1), events(e, 2)]);
    // Placed on node 0, which mixes it; c talks on node 1 and listens on node 2, e the
    // other way round.
    await handshake(c, e, eEvents, cEvents);
    const cUp = await c.at(url(1)).uploadSocket('/upCall', { otherID: e.id });
    const eUp = await e.at(url(2)).uploadSocket('/upCall', { otherID: c.id });
    let done = false;
    const speak = async (ws: typeof cUp, tone: ToneSource) => {
      while (!done && ws.readyState === ws.OPEN) await talk(ws, (ms) => tone.next(ms), 200);
    };
    const talking = Promise.all([speak(cUp, new ToneSource(440)), speak(eUp, new ToneSource(1000))]);
    const hear = async (u: KeyUser, i: number, other: KeyUser) => {
      const q = await u.at(url(i)).mediaQuery({ otherID: other.id, format: 'wav' });
      // 3 s of WAV after its header; the last 1.5 s are compared.
      const got = await listenUntil(
        `${url(i)}/joinCall?${q}`,
        { method: 'POST' },
        (b) => b.length >= 44 + 288_000,
        60_000,
      );
      expect(got.status, got.text).toBe(200);
      return samplesOf(got.body.subarray(got.body.length - 144_000));
    };
    try {
      const [hc, he] = await Promise.all([hear(c, 2, e), hear(e, 1, c)]);
      expect(powerAt(hc, 1000)).toBeGreaterThan(100 * powerAt(hc, 440));
      expect(powerAt(he, 440)).toBeGreaterThan(100 * powerAt(he, 1000));
      // c's upload through node 1 holds c's slot on the owner: a second one, on the owner
      // or through node 2, is "already connected".
      for (const i of [0, 2]) {
        const q = await c.at(url(i)).mediaQuery({ otherID: e.id });
        const res = await fetch(`${url(i)}/upCall?${q}`, { method: 'POST', body: '' });
        expect([res.status, await res.text()]).toEqual([409, 'user already connected\n']);
      }
    } finally {
      done = true;
      await talking;
    }
    // Hung up: the streams on nodes 1 and 2 end with the call.
    const ended = new Promise<void>((resolve) => cUp.once('close', () => resolve()));
    expect((await c.at(url(2)).post('/endCall', { Destination: e.id })).status).toBe(200);
    await ended;
    eUp.close();
  });

  it('replays missed events after Last-Event-ID on another node than the one that sent them', async () => {
    const c = new KeyUser(url(0));
    const e = new KeyUser(url(1));
    const tab = await events(e, 1);
    expect((await newCall(c, e, 'first')).status).toBe(200);
    const seen = await tab.next('newCall', 10_000);
    tab.close();
    // While e is away, a call placed on node 2 replaces the first one.
    expect((await newCall(c.at(url(2)), e, 'second')).status).toBe(200);
    const ticket = await e.at(url(0)).getTicket();
    const back = await SseClient.open(`${url(0)}/messages?PKey=${e.id}&Signature=${e.sign(ticket)}`, {
      'Last-Event-ID': seen.id!,
    });
    streams.push(back);
    await back.next('endCall', 10_000);
    const missed = await back.next('newCall', 10_000);
    expect(unhex(missed.data).challenge).toBe('second');
    expect(Number(missed.id)).toBeGreaterThan(Number(seen.id));
    await c.post('/endCall', { Destination: e.id });
  });

  it('shares group rooms: created on one node, announced, listed and joined for media elsewhere', async () => {
    const watcher = new KeyUser(url(1));
    const watch = await events(watcher, 1);
    const m = new KeyUser(url(0));
    const mEvents = await events(m, 2);
    const room = `room-${Date.now()}`;
    const up = await m.uploadSocket('/upRoom', { roomID: room });
    const announced = unhex((await watch.next('newRoom', 10_000)).data);
    expect(announced).toMatchObject({ name: room });
    const id = announced.roomid as number;
    // A second member joins on the room's node; the first, listening on node 2, hears of it.
    const m2 = new KeyUser(url(0));
    const up2 = await m2.uploadSocket('/upRoom', { roomID: room });
    let conf = unhex((await mEvents.next('setAudioConf', 10_000)).data);
    while (conf.from !== m2.id) conf = unhex((await mEvents.next('setAudioConf', 10_000)).data);
    expect(conf).toMatchObject({ from: m2.id, roomid: String(id), in: '1' });
    up2.close();
    // Listed with its member on node 2.
    await eventually(
      async () => {
        const list = await readJson<{ id: number; count: number }[]>(`${url(2)}/listRoom`);
        return list.some((r) => r.id === id && r.count === 1);
      },
      10_000,
      'room listed on node 2 with one member',
    );
    const members = await readJson<{ pubkey: string }[]>(`${url(2)}/listMembers?roomID=${id}`);
    expect(members.map((x) => x.pubkey)).toEqual([m.id]);
    // Its mixer is on node 0: node 1 relays it rather than opening a second room.
    const other = new KeyUser(url(1));
    const q = await other.mediaQuery({ roomID: room, format: 'wav' });
    const res = await fetch(`${url(1)}/joinRoom?${q}`, { method: 'POST' });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    up.close();
    // Empty, it closes, and the cluster forgets it.
    await eventually(
      async () => (await fetch(`${url(2)}/listMembers?roomID=${id}`)).status === 404,
      10_000,
      'room gone',
    );
    // Nothing holds the name: node 1 opens it again, announced as before, and the
    // cluster lists that one room under the name.
    const again = await other.uploadSocket('/upRoom', { roomID: room });
    const reopened = unhex((await watch.next('newRoom', 10_000)).data);
    expect(reopened.name).toBe(room);
    await eventually(
      async () => {
        const list = await readJson<{ id: number; name: string }[]>(`${url(2)}/listRoom`);
        const named = list.filter((r) => r.name === room);
        return named.length === 1 && named[0]!.id === reopened.roomid;
      },
      10_000,
      'the reopened room listed once',
    );
    again.close();
  });

  it('drops malformed bus messages, and the nodes go on', async () => {
    const c = new KeyUser(url(0));
    const e = new KeyUser(url(1));
    const eEvents = await events(e, 2);
    expect((await newCall(c, e, 'bad-bus')).status).toBe(200);
    await eEvents.next('newCall', 10_000);
    // Garbage on the user's event subject and the broadcast subject reaches no stream.
    nc.publish(`chorus.voip.events.${e.id}`, 'not json');
    nc.publish(`chorus.voip.events.${e.id}`, JSON.stringify({ id: 'x', name: 'newCall' }));
    nc.publish(
      `chorus.voip.events.${e.id}`,
      JSON.stringify({ id: 5, name: 'evil', data: 'a\n\nevent: x', at: 1 }),
    );
    nc.publish('chorus.voip.broadcast', '{');
    // The call's record names its owner and id; commands of the wrong shape, or from
    // someone not in the call, are refused by the owner, not obeyed.
    const kv = await new Kvm(jetstream(nc)).open('chorus_voip-calls');
    const key = [c.id, e.id].sort().join('.');
    const record = (await kv.get(key))!.json<{ id: string; owner: { id: string } }>();
    expect(record.owner.id).toBe('node-0');
    const decoder = new TextDecoder();
    for (const bad of [
      '{"op":"end"}',
      'null',
      'not json',
      '{"op":"explode","by":"x"}',
      '{"op":"end","by":"mallory"}',
    ]) {
      const answer = await nc.request(`chorus.voip.call.${record.id}`, bad, { timeout: 5000 });
      expect(JSON.parse(decoder.decode(answer.data))).toEqual({ outcome: 'refused' });
    }
    // The call still rings: answering it works, then a real hang-up from node 1.
    expect(
      (
        await e.post('/answer', {
          Destination: c.id,
          challenge: 'c2-challenge',
          signature: e.sign('bad-bus'),
        })
      ).status,
    ).toBe(200);
    expect((await c.at(url(1)).post('/endCall', { Destination: e.id })).status).toBe(200);
    await eEvents.next('endCall', 10_000);
    // Nothing reached the stream from the garbage (no 'evil', no extra newCall).
    expect(eEvents.events.map((ev) => ev.event)).toEqual([]);
    for (const i of [0, 2]) {
      await eventually(
        () => cluster.nodes[i]!.process.output().includes('voip: bus message'),
        10_000,
        `node ${i} logged the bad messages`,
      );
    }
  });

  it('ends the calls of a node that dies for the other party, and nobody stays busy', async () => {
    const c = new KeyUser(url(2));
    const e = new KeyUser(url(2));
    const [cEvents, eEvents] = await Promise.all([events(c, 0), events(e, 1)]);
    // Owned by node 2, accepted there.
    await handshake(c, e, eEvents, cEvents);
    await killNode(cluster.nodes[2]!.process);
    expect(unhex((await cEvents.next('endCall', 30_000)).data).from).toBe(e.id);
    expect(unhex((await eEvents.next('endCall', 30_000)).data).from).toBe(c.id);
    // Nobody is busy: the pair calls again at once, on a live node.
    expect((await newCall(c.at(url(0)), e, 'after-death')).status).toBe(200);
    expect(unhex((await eEvents.next('newCall', 10_000)).data).challenge).toBe('after-death');
  }, 60_000);

  it('answers 503 in plain text while NATS is gone, and a ticket issued before it still verifies after', async () => {
    const c = new KeyUser(url(0));
    const e = new KeyUser(url(1));
    const ticket = await c.getTicket();
    const readyz = async (i: number): Promise<number> => (await fetch(`${url(i)}/readyz`)).status;
    await cluster.nats.stop();
    for (const i of [0, 1])
      await eventually(async () => (await readyz(i)) === 503, 15_000, `node ${i} not ready`);
    const refused = await fetch(`${url(0)}/getCallTicket`, { headers: { PKey: e.id } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await refused.text()).toMatch(/NATS/);
    const form = { Destination: e.id, challenge: 'after-outage', signature: c.sign(ticket) };
    expect((await c.at(url(1)).post('/newCall', form)).status).toBe(503);
    await cluster.nats.start();
    for (const i of [0, 1])
      await eventually(async () => (await readyz(i)) === 200, 30_000, `node ${i} ready`);
    // The ticket was not spent by the refused attempt, and survived in JetStream.
    const placed = await c.at(url(1)).post('/newCall', form);
    expect(placed.status).toBe(200);
    await c.at(url(0)).post('/endCall', { Destination: e.id });
  }, 90_000);
});
