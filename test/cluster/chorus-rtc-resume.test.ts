import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { resumeSubject } from '../../src/api/chorus/rtc-handover.js';
import { killNode, startCluster, type Cluster } from '../fixtures/cluster.js';
import { NdcRtxPublisher } from '../fixtures/ndc-rtx-publisher.js';
import { nativeClusterEnv } from '../fixtures/native-cluster-env.js';
import { ofType, RtcClient, videoOf, type Msg } from '../fixtures/rtc-client.js';
import { hasTool } from '../fixtures/system-tools.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { eventually } from '../fixtures/ws-client.js';

// A resume that lands on another node than the one holding the session (a load balancer
// picked the other one): the holder hands the session over on chorus.rtc.resume.<hash>,
// the new node continues it (`resumed` with `mediaReset`, the missed messages replayed
// with their seq), and the room never sees the participant leave.

const KEY = 'rtc-resume-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true };

let cluster: Cluster;
let nc: NatsConnection;
const receiver = new WebhookReceiver(KEY, SECRET);
const clients: RtcClient[] = [];
const url = (i: number): string => cluster.nodes[i]!.url;
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

const tokenFor = (room: string, identity: string): Promise<string> =>
  createAccessToken(KEY, SECRET, { room, identity, grants: MEMBER, ttlSeconds: 600 });

async function join(
  i: number,
  room: string,
  identity: string,
  resume?: { token: string; lastSeq: number },
): Promise<{ client: RtcClient; join: Msg }> {
  const r = await RtcClient.connect(url(i), await tokenFor(room, identity), resume);
  clients.push(r.client);
  return r;
}

/** Messages about `identity` coming or going as a participant. */
const presenceOf = (c: RtcClient, identity: string): Msg[] =>
  c.received.filter(
    (m) =>
      (m.type === 'participantLeft' && m.identity === identity) ||
      (m.type === 'participantJoined' && (m.participant as { identity: string }).identity === identity),
  );

/** The messages replayed after `resumed` (they follow it on the socket). */
async function replayedAt(r: { client: RtcClient; join: Msg }): Promise<Msg[]> {
  const n = r.join.replayed as number;
  await eventually(() => r.client.received.length > n, 20_000, `${n} replayed messages`);
  return r.client.received.slice(1, 1 + n);
}

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('native signalling: resume on another node', () => {
  beforeAll(async () => {
    await receiver.start();
    // A short drain: a stopping node closes its sockets (1001) after 1 s.
    cluster = await startCluster({
      nodes: 2,
      env: {
        ...nativeClusterEnv(KEY, SECRET),
        SHUTDOWN_GRACE_SECONDS: '1',
        CHORUS_WEBHOOK_URLS: `http://127.0.0.1:${receiver.port}/hook`,
      },
    });
    nc = await natsConnect({ servers: cluster.nats.url });
  }, 90_000);

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await nc?.close();
    await cluster?.stop();
    await receiver.stop();
  });

  it('a publisher cut off node 0 resumes on node 1: missed data replayed with its seq, nobody sees it leave, its media flows again after republishing', async () => {
    const alice = await join(0, 'm1', 'alice');
    const oldLeg = await alice.client.publish();
    const bob = await join(1, 'm1', 'bob');
    // Carol, on alice's node, shows what alice's session there has heard.
    const carol = await join(0, 'm1', 'carol');
    const atBob = await bob.client.subscribe('alice');
    await eventually(() => atBob.videoPackets.length > 20, 30_000, "alice's video at bob");

    // Alice's network goes: node 0 keeps her session for a resume.
    const resume = { token: alice.join.resumeToken as string, lastSeq: alice.client.lastSeq };
    alice.client.drop();
    oldLeg.close();
    for (const payload of ['while away 1', 'while away 2'])
      expect(await bob.client.request({ type: 'data', payload })).toMatchObject({ type: 'ok' });
    await carol.client.wait(
      ofType('data', (m) => m.payload === 'while away 2'),
      20_000,
    );

    // She comes back through node 1.
    const back = await join(1, 'm1', 'alice', resume);
    expect(back.join).toMatchObject({ type: 'resumed', seq: 0, mediaReset: true });
    const replayed = await replayedAt(back);
    const data = replayed.filter((m) => m.type === 'data');
    expect(data.map((m) => m.payload)).toEqual(['while away 1', 'while away 2']);
    expect(data.every((m) => m.from === 'bob')).toBe(true);
    // The original seq: continuing right after what she had.
    expect(replayed[0]!.seq).toBe(resume.lastSeq + 1);
    expect(replayed.map((m) => m.seq)).toEqual(replayed.map((_, i) => resume.lastSeq + 1 + i));

    // She publishes again on node 1: the same track ids; bob hears it and gets her media.
    const from = bob.client.received.length;
    const newLeg = await back.client.publish();
    await bob.client.wait(videoOf('alice'), 30_000, from);
    const again = await bob.client.subscribe('alice');
    await eventually(() => again.videoPackets.length > 20, 30_000, "alice's video at bob after the move");
    expect(newLeg).toBeDefined();

    // Live messages go on with the next seq, both ways.
    expect(await bob.client.request({ type: 'data', payload: 'welcome back' })).toMatchObject({ type: 'ok' });
    const live = await back.client.wait(
      ofType('data', (m) => m.payload === 'welcome back'),
      20_000,
    );
    expect(live.seq).toBeGreaterThan(replayed.at(-1)!.seq);
    expect(await back.client.request({ type: 'data', payload: 'hello from node 1' })).toMatchObject({
      type: 'ok',
    });
    await bob.client.wait(
      ofType('data', (m) => m.payload === 'hello from node 1'),
      20_000,
    );
    await carol.client.wait(
      ofType('data', (m) => m.payload === 'hello from node 1'),
      20_000,
    );
    // Carol, on node 0, also saw the tracks come back (so the room's events reached node 0 after the move) ...
    const gone = await carol.client.wait(
      ofType('trackUnpublished', (m) => m.identity === 'alice' && m.trackId === 'alice-video'),
      20_000,
    );
    const after = carol.client.received.findIndex((m) => m.seq === gone.seq) + 1;
    await carol.client.wait(videoOf('alice'), 20_000, after);
    // ... and neither she nor bob saw alice leave or join.
    expect(presenceOf(bob.client, 'alice')).toEqual([]);
    expect(presenceOf(carol.client, 'alice')).toEqual([]);
    // The room lists alice once, now on node 1.
    const list = await RtcClient.connect(url(0), await tokenFor('m1', 'dan'));
    clients.push(list.client);
    const others = list.join.others as Array<{ identity: string; node: string }>;
    expect(others.filter((o) => o.identity === 'alice')).toEqual([
      expect.objectContaining({ identity: 'alice', node: cluster.nodes[1]!.id }),
    ]);
    // Webhooks: alice's tracks went and came back, she never left. Carol leaving on node 0
    // comes after whatever node 0 said about alice (one ordered chain per room and node).
    carol.client.socket.send({ type: 'leave' });
    const hooks = (event: string, who: string): number =>
      receiver.events.filter(
        (e) => e.room.name === 'm1' && e.event === event && e.participant?.identity === who,
      ).length;
    await eventually(
      () => hooks('participant_left', 'carol') === 1,
      30_000,
      "carol's participant_left webhook",
    );
    await eventually(() => hooks('track_published', 'alice') >= 4, 30_000, "alice's tracks published twice");
    expect(hooks('track_unpublished', 'alice')).toBeGreaterThanOrEqual(2);
    expect(hooks('participant_joined', 'alice')).toBe(1);
    expect(hooks('participant_left', 'alice')).toBe(0);
  }, 180_000);

  it("a session moved to another node keeps every node's speakers: the next change on one node does not drop the other's", async () => {
    const speakerIds = (m: Msg): string[] =>
      (m.speakers as Array<{ identity: string }>).map((x) => x.identity).sort();
    const speaking = (...ids: string[]) =>
      ofType('speakers', (m) => ids.every((id) => speakerIds(m).includes(id)));
    // Mia is there first: a session hears of speakers as they change (not who spoke before it joined).
    const mia = await join(0, 'sp-move', 'mia');
    // Sam speaks on node 0, tia on node 1: each node reports its own publishers.
    const sam = await join(0, 'sp-move', 'sam');
    await sam.client.publish(undefined, new NdcRtxPublisher('sam', { audioLevelDbov: 20 }));
    const tia = await join(1, 'sp-move', 'tia');
    await tia.client.publish(undefined, new NdcRtxPublisher('tia', { audioLevelDbov: 20 }));
    await mia.client.wait(speaking('sam', 'tia'), 30_000);

    // Mia moves to node 1.
    const resume = { token: mia.join.resumeToken as string, lastSeq: mia.client.lastSeq };
    mia.client.drop();
    const back = await join(1, 'sp-move', 'mia', resume);
    expect(back.join).toMatchObject({ type: 'resumed', mediaReset: true });

    // Uma starts speaking on node 0: node 0 reports sam and uma; tia, on node 1, still speaks.
    const uma = await join(0, 'sp-move', 'uma');
    await uma.client.publish(undefined, new NdcRtxPublisher('uma', { audioLevelDbov: 20 }));
    const heard = await back.client.wait(speaking('uma'), 30_000);
    expect(speakerIds(heard)).toEqual(['sam', 'tia', 'uma']);
    // Someone joining on node 1 hears who speaks on both nodes (each says its own again).
    const vic = await join(1, 'sp-move', 'vic');
    await vic.client.wait(speaking('sam', 'tia', 'uma'), 30_000);
  }, 120_000);

  it('refuses a handover to another identity, a malformed request or a bogus token: those get a fresh join; the session itself still moves', async () => {
    const erin = await join(0, 'm2', 'erin');
    const watcher = await join(1, 'm2', 'watcher');
    const token = erin.join.resumeToken as string;
    const resume = { token, lastSeq: erin.client.lastSeq };
    erin.client.drop();

    // On the bus: not JSON, and another identity asking, are refused by the holder.
    const subject = resumeSubject(token);
    const ask = async (data: string): Promise<unknown> =>
      JSON.parse(new TextDecoder().decode((await nc.request(subject, data, { timeout: 10_000 })).data));
    expect(await ask('not json')).toMatchObject({ ok: false });
    expect(
      await ask(JSON.stringify({ room: 'm2', identity: 'mallory', lastSeq: 0, node: 'x' })),
    ).toMatchObject({
      ok: false,
      reason: 'another participant',
    });

    // Another identity presenting erin's resume token on node 1: a fresh session of its own.
    const mallory = await join(1, 'm2', 'mallory', resume);
    expect(mallory.join).toMatchObject({
      type: 'join',
      resumeFailed: true,
      participant: { identity: 'mallory' },
    });
    // The same identity in another room: fresh too.
    const elsewhere = await join(1, 'm3', 'erin', resume);
    expect(elsewhere.join).toMatchObject({ type: 'join', resumeFailed: true });
    elsewhere.client.socket.send({ type: 'leave' });
    await elsewhere.client.socket.closed;
    // A token no node holds: fresh.
    const bogus = await join(1, 'm4', 'frank', { token: 'A'.repeat(24), lastSeq: 3 });
    expect(bogus.join).toMatchObject({ type: 'join', resumeFailed: true });

    // Erin's own resume still finds her session on node 0, untouched by the refusals.
    const back = await join(1, 'm2', 'erin', resume);
    expect(back.join).toMatchObject({ type: 'resumed', mediaReset: true });
    const replayed = await replayedAt(back);
    // What she missed: mallory joining.
    expect(replayed.some((m) => m.type === 'participantJoined')).toBe(true);
    expect(await back.client.request({ type: 'ping', timestamp: 1 })).toMatchObject({ type: 'pong' });
    expect(presenceOf(watcher.client, 'erin')).toEqual([]);
  }, 180_000);

  it('room messages sent all through the move reach the mover once each and in order: replayed from the old node, then heard on the new one', async () => {
    const jo = await join(0, 'm7', 'jo');
    const resume = { token: jo.join.resumeToken as string, lastSeq: jo.client.lastSeq };
    jo.client.drop();
    // The room's feed, published on the bus as a node does, a message every 2 ms or so.
    let sent = 0;
    const flood = setInterval(() => {
      sent += 1;
      nc.publish(
        'chorus.rtc.room.m7',
        JSON.stringify({ room: 'm7', node: 'test', event: { type: 'data', payload: String(sent) } }),
      );
    }, 2);
    let last = 0;
    try {
      await eventually(() => sent >= 10, 20_000, 'the flood to start');
      const back = await join(1, 'm7', 'jo', resume);
      expect(back.join).toMatchObject({ type: 'resumed', mediaReset: true });
      const atResume = sent;
      await eventually(() => sent >= atResume + 100, 30_000, '100 more messages');
    } finally {
      clearInterval(flood);
      last = sent;
    }
    const back = clients.at(-1)!;
    await back.wait(
      ofType('data', (m) => m.payload === String(last)),
      30_000,
    );
    const got = back.received.filter((m) => m.type === 'data').map((m) => Number(m.payload));
    expect(got).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    const seqs = back.received.slice(1).map((m) => m.seq);
    expect(seqs).toEqual(seqs.map((_, i) => resume.lastSeq + 1 + i));
  }, 120_000);

  it('a node stopping (SIGTERM) closes its sockets with 1001; a client resuming on the other node keeps its session', async () => {
    const henry = await join(0, 'm6', 'henry');
    const watcher = await join(1, 'm6', 'iris');
    await henry.client.wait(ofType('participantJoined'), 20_000);
    expect(await watcher.client.request({ type: 'data', payload: 'before the stop' })).toMatchObject({
      type: 'ok',
    });
    await henry.client.wait(ofType('data'), 20_000);
    const node0 = cluster.nodes[0]!.process;
    node0.kill('SIGTERM');
    expect((await henry.client.socket.closed).code).toBe(1001);
    const back = await join(1, 'm6', 'henry', {
      token: henry.join.resumeToken as string,
      lastSeq: henry.client.lastSeq,
    });
    expect(back.join).toMatchObject({ type: 'resumed', mediaReset: true });
    expect(await back.client.request({ type: 'ping', timestamp: 4 })).toMatchObject({ type: 'pong' });
    await node0.exited;
    // The stopped node let its participant go without a word: iris saw no leave.
    expect(await watcher.client.request({ type: 'data', payload: 'after the stop' })).toMatchObject({
      type: 'ok',
    });
    await back.client.wait(
      ofType('data', (m) => m.payload === 'after the stop'),
      20_000,
    );
    expect(presenceOf(watcher.client, 'henry')).toEqual([]);
  }, 120_000);

  it('the holding node killed before the resume: a fresh join on the other node', async () => {
    await cluster.restart(0);
    const gina = await join(0, 'm5', 'gina');
    const resume = { token: gina.join.resumeToken as string, lastSeq: gina.client.lastSeq };
    gina.client.drop();
    await killNode(cluster.nodes[0]!.process);
    const back = await join(1, 'm5', 'gina', resume);
    expect(back.join).toMatchObject({ type: 'join', resumeFailed: true, participant: { identity: 'gina' } });
    expect(await back.client.request({ type: 'ping', timestamp: 2 })).toMatchObject({ type: 'pong' });
  }, 120_000);
});
