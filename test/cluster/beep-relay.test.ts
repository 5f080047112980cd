import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { powerAt } from '../fixtures/audio.js';
import { BeepVoiceClient } from '../fixtures/beep-client.js';
import { beepClaim, startBeepCluster } from '../fixtures/beep-cluster.js';
import { killNode, type Cluster } from '../fixtures/cluster.js';
import { FakePermissions } from '../fixtures/fake-permissions.js';
import { nodeMetric } from '../fixtures/node-metric.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';

/*
 * Beep audio across nodes: members of one conversation connected to nodes 0, 1 and 2
 * hear each other (each node mixes its own members' mix-minus; speakers cross nodes once
 * per speaker through the relay), bites are cut once (by the speaker's node), a node
 * killed takes only its members' voices with it, and the relay drops nonsense.
 */
const perms = new FakePermissions();
let cluster: Cluster;
let nats: NatsConnection;
const clients: BeepVoiceClient[] = [];
/** Relayed packets seen on NATS, by subject. */
const relayed = new Map<string, number>();
/** Bites seen on NATS, by conversation / user / client / start. */
const biteCounts = new Map<string, number>();

const Bite = protobuf
  .parse(readFileSync(new URL('../../src/api/beep/beep.proto', import.meta.url), 'utf8'))
  .root.lookupType('protobuf.Bite');

const claim = beepClaim;
const node = (i: number) => cluster.nodes[i]!.url;
const join = async (i: number, conversation: string, userid: string): Promise<number> =>
  (await fetch(`${node(i)}/join/${conversation}`, { method: 'POST', headers: claim(userid) })).status;
const metrics = async (i: number): Promise<string> => (await fetch(`${node(i)}/metrics`)).text();
const metric = (i: number, name: string) => nodeMetric(node(i), name);
const receivedFrom = async (i: number, from: string): Promise<number> =>
  Number(
    new RegExp(`^chorus_beep_relay_received_packets_total\\{from="${from}"\\} (\\d+)`, 'm').exec(
      await metrics(i),
    )?.[1] ?? 0,
  );

/** A member on node `i` in `conversation`, sending a tone of `freq`. */
async function member(
  i: number,
  userid: string,
  conversation: string,
  freq: number,
): Promise<BeepVoiceClient> {
  const c = new BeepVoiceClient(freq);
  clients.push(c);
  await c.connect(`${node(i).replace('http', 'ws')}/connect`, 'bare', claim(userid));
  expect(await join(i, conversation, userid)).toBe(200);
  c.speak();
  return c;
}

/** Hears each of `want` clearly, and `own` (its own tone) not at all: 30 times weaker than the weakest wanted. */
function hears(c: BeepVoiceClient, want: number[], own: number): boolean {
  const heard = c.recent(1000);
  if (heard.length < 40_000) return false;
  const weakest = Math.min(...want.map((f) => powerAt(heard, f)));
  return weakest > 30 * powerAt(heard, own) && weakest > 1000;
}

/** Does not hear `freq` any more: 100 times weaker than the weakest of `want` in the last half second. */
function stoppedHearing(c: BeepVoiceClient, freq: number, want: number[]): boolean {
  const heard = c.recent(500);
  const weakest = Math.min(...want.map((f) => powerAt(heard, f)));
  return weakest > 100 * powerAt(heard, freq);
}

const enabled = hasTool('nats-server', 'nats-server');

describe.runIf(enabled)('Beep audio across nodes', () => {
  beforeAll(async () => {
    cluster = await startBeepCluster(
      perms,
      ['ann', 'ben', 'cat', 'dan', 'eve', 'fay', 'gus', 'hal', 'ivy'],
      ['standup', 'solo', 'kill'],
    );
    nats = await connect({ servers: cluster.nats.url, maxReconnectAttempts: -1 });
    nats.subscribe('chorus.beep.conv.*.audio.>', {
      callback: (_err, msg) => {
        relayed.set(msg.subject, (relayed.get(msg.subject) ?? 0) + 1);
      },
    });
    nats.subscribe('bite', {
      callback: (_err, msg) => {
        const b = Bite.toObject(Bite.decode(msg.data), { longs: Number }) as {
          key: string;
          startMs: number;
          client: { key: string; client: string };
        };
        const k = `${b.key}/${b.client.key}/${b.client.client}/${b.startMs}`;
        biteCounts.set(k, (biteCounts.get(k) ?? 0) + 1);
      },
    });
    await nats.flush();
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await nats?.close();
    await cluster?.stop();
    await perms.stop();
  });

  // Tones with no harmonic near another's.
  const ANN = 440;
  const BEN = 770;
  const CAT = 1130;
  const DAN = 1570;

  it('members on nodes 0, 1, 2 (two on node 0) each hear every other member and not themselves', async () => {
    const ann = await member(0, 'ann', 'standup', ANN);
    const dan = await member(0, 'dan', 'standup', DAN);
    const ben = await member(1, 'ben', 'standup', BEN);
    const cat = await member(2, 'cat', 'standup', CAT);
    await eventually(
      () =>
        hears(ann, [BEN, CAT, DAN], ANN) &&
        hears(dan, [ANN, BEN, CAT], DAN) &&
        hears(ben, [ANN, CAT, DAN], BEN) &&
        hears(cat, [ANN, BEN, DAN], CAT),
      60_000,
      'everyone to hear the three others and not themselves',
    );
    // Each node mixes every remote speaker once: node 0 two (ben, cat), nodes 1 and 2 three.
    expect(await metric(0, 'chorus_beep_relay_remote_speakers')).toBe(2);
    expect(await metric(1, 'chorus_beep_relay_remote_speakers')).toBe(3);
    expect(await metric(2, 'chorus_beep_relay_remote_speakers')).toBe(3);
    for (const i of [0, 1, 2]) expect(await metric(i, 'chorus_beep_relay_links')).toBe(2);
  }, 120_000);

  it('bites are published once per speaker and window, by the speaker’s node only', async () => {
    const of = (user: string) => [...biteCounts.entries()].filter(([k]) => k.startsWith(`standup/${user}/`));
    await eventually(
      () => ['ann', 'ben', 'cat', 'dan'].every((u) => of(u).length >= 3),
      30_000,
      'three bites of each speaker',
    );
    for (const u of ['ann', 'ben', 'cat', 'dan']) for (const [, n] of of(u)) expect(n).toBe(1);
    // Nothing but the four speakers of standup (no bite of a relayed voice under another name).
    for (const k of biteCounts.keys()) expect(k).toMatch(/^standup\/(ann|ben|cat|dan)\/web\/\d+$/);
  }, 60_000);

  it('a conversation on one node relays nothing', async () => {
    const before = await metric(1, 'chorus_beep_voice_packets_total');
    const eve = await member(1, 'eve', 'solo', ANN);
    const fay = await member(1, 'fay', 'solo', BEN);
    await eventually(
      () => hears(eve, [BEN], ANN) && hears(fay, [ANN], BEN),
      30_000,
      'eve and fay to hear each other',
    );
    await eventually(
      async () => (await metric(1, 'chorus_beep_voice_packets_total')) > before + 200,
      30_000,
      'their packets to reach node 1',
    );
    expect([...relayed.keys()].filter((s) => s.startsWith('chorus.beep.conv.solo.'))).toEqual([]);
    eve.close();
    fay.close();
    await eventually(
      async () => (await metric(1, 'chorus_beep_conversations')) === 1,
      30_000,
      'solo closed on node 1',
    );
  }, 60_000);

  it('malformed relay messages are logged and dropped; the conversation goes on', async () => {
    const [ann, , ben] = clients as [BeepVoiceClient, BeepVoiceClient, BeepVoiceClient];
    const out = () => cluster.nodes[0]!.process.output();
    nats.publish('chorus.beep.conv.standup.nodes', 'not json at all');
    nats.publish('chorus.beep.conv.standup.nodes', JSON.stringify({ node: 7, here: 'yes' }));
    // A node name the cluster does not know: no link, no subscription for it.
    nats.publish(
      'chorus.beep.conv.standup.nodes',
      JSON.stringify({ node: 'node-99', instance: 'x', here: true, hello: true }),
    );
    // On node 1's speakers' subjects, which node 0 listens to: no member, and too big.
    nats.publish('chorus.beep.conv.standup.audio.node-1.not!a!member', new Uint8Array(40));
    nats.publish(
      `chorus.beep.conv.standup.audio.node-1.${Buffer.from('x\u0000y').toString('base64url')}`,
      new Uint8Array(4000),
    );
    await eventually(
      () =>
        /bus message is not JSON, dropped/.test(out()) &&
        /bus message of the wrong shape, dropped/.test(out()) &&
        /relayed audio for no member, dropped/.test(out()) &&
        /relayed packet of a bad size, dropped/.test(out()) &&
        /announcement of an unknown node, dropped/.test(out()),
      15_000,
      'the drop lines on node 0',
    );
    expect(await metric(0, 'chorus_beep_relay_remote_speakers')).toBe(2);
    expect(await metric(0, 'chorus_beep_relay_links')).toBe(2);
    const heard = ann.chunks;
    await eventually(() => ann.chunks > heard + 100, 15_000, 'audio still flowing');
    await eventually(
      () => hears(ann, [BEN, CAT, DAN], ANN) && hears(ben, [ANN, CAT, DAN], BEN),
      30_000,
      'still clear',
    );
  }, 60_000);

  it("a member who moves to another conversation leaves the others' mixes", async () => {
    const [ann, , ben, cat] = clients as [BeepVoiceClient, BeepVoiceClient, BeepVoiceClient, BeepVoiceClient];
    // dan (node 0) goes to solo, alone there now: nothing of his crosses nodes any more.
    expect(await join(2, 'solo', 'dan')).toBe(200);
    await eventually(
      async () =>
        (await metric(1, 'chorus_beep_relay_remote_speakers')) === 2 &&
        (await metric(2, 'chorus_beep_relay_remote_speakers')) === 2,
      15_000,
      "dan's input gone from nodes 1 and 2",
    );
    await eventually(
      () =>
        stoppedHearing(ann, DAN, [BEN, CAT]) &&
        stoppedHearing(ben, DAN, [ANN, CAT]) &&
        stoppedHearing(cat, DAN, [ANN, BEN]),
      15_000,
      'nobody in standup hears dan',
    );
  }, 60_000);

  it('each speaker crosses to each other node once: what NATS carried, what was sent and what arrived agree', async () => {
    for (const c of clients.slice(0, 4)) c.close();
    await eventually(
      async () => {
        for (const i of [0, 1, 2]) if ((await metric(i, 'chorus_beep_connections')) !== 0) return false;
        for (const i of [0, 1, 2]) if ((await metric(i, 'chorus_beep_relay_links')) !== 0) return false;
        return true;
      },
      30_000,
      'everyone gone, no relay left',
    );
    await nats.flush();
    const subjects = [...relayed.keys()];
    const onNats = (n: string) =>
      subjects.filter((s) => s.split('.')[5] === n).reduce((sum, s) => sum + relayed.get(s)!, 0);
    // One subject per speaker of standup, named by the speaker's node (the forged ones of the test above aside).
    const real = subjects.filter(
      (s) =>
        s.startsWith('chorus.beep.conv.standup.audio.') && !s.endsWith('not!a!member') && relayed.get(s)! > 1,
    );
    expect(real.map((s) => s.split('.')[5]).sort()).toEqual(['node-0', 'node-0', 'node-1', 'node-2']);
    for (const [i, n] of [
      [0, 'node-0'],
      [1, 'node-1'],
      [2, 'node-2'],
    ] as const) {
      const sent = await metric(i, 'chorus_beep_relay_sent_packets_total');
      const spoken = await metric(i, 'chorus_beep_voice_packets_total');
      // Everything sent is on NATS once (the test's own two forged messages aside).
      expect(onNats(n) - (n === 'node-1' ? 2 : 0)).toBe(sent);
      // Each packet of a speaker published at most once, however many nodes hear it.
      expect(sent).toBeLessThanOrEqual(spoken);
      expect(sent).toBeGreaterThan(0);
      // Every other node received this node's packets at most once each, and most of them.
      for (const j of [0, 1, 2].filter((j) => j !== i)) {
        const got = await receivedFrom(j, n);
        expect(got).toBeLessThanOrEqual(sent);
        expect(got).toBeGreaterThan(sent / 2);
      }
    }
  }, 60_000);

  it('a node killed: its member goes silent for the others, who keep hearing each other; it comes back through another node', async () => {
    const gus = await member(0, 'gus', 'kill', ANN);
    const hal = await member(1, 'hal', 'kill', BEN);
    const ivy = await member(2, 'ivy', 'kill', CAT);
    await eventually(
      () => hears(gus, [BEN, CAT], ANN) && hears(hal, [ANN, CAT], BEN) && hears(ivy, [ANN, BEN], CAT),
      60_000,
      'all three to hear each other',
    );
    await killNode(cluster.nodes[2]!.process);
    await eventually(
      () => stoppedHearing(gus, CAT, [BEN]) && stoppedHearing(hal, CAT, [ANN]),
      5_000,
      'ivy gone from the others within 5 s',
    );
    await eventually(() => hears(gus, [BEN], ANN) && hears(hal, [ANN], BEN), 20_000, 'gus and hal go on');
    // Her input is taken out of the mixes (silence, then the node gone).
    await eventually(
      async () =>
        (await metric(0, 'chorus_beep_relay_remote_speakers')) === 1 &&
        (await metric(1, 'chorus_beep_relay_remote_speakers')) === 1,
      15_000,
      "ivy's input removed",
    );
    ivy.close();
    // Her client connects again, through node 0, and joins again.
    const back = await member(0, 'ivy', 'kill', CAT);
    await eventually(
      () => hears(gus, [BEN, CAT], ANN) && hears(hal, [ANN, CAT], BEN) && hears(back, [ANN, BEN], CAT),
      60_000,
      'ivy heard again, and hearing',
    );
  }, 180_000);

  it('NATS away for longer than a node is remembered: the nodes find each other again once it is back', async () => {
    const [gus, hal, , back] = clients.slice(-4) as [
      BeepVoiceClient,
      BeepVoiceClient,
      BeepVoiceClient,
      BeepVoiceClient,
    ];
    await cluster.nats.stop();
    try {
      // Each node forgets the other when its announcements stop (15 s); local mixing goes on.
      await eventually(
        async () =>
          (await metric(0, 'chorus_beep_relay_links')) === 0 &&
          (await metric(1, 'chorus_beep_relay_links')) === 0,
        60_000,
        'the relay links expired',
      );
      await eventually(
        () => hears(gus, [CAT], ANN) && stoppedHearing(gus, BEN, [CAT]),
        20_000,
        'node 0 mixes on alone',
      );
    } finally {
      await cluster.nats.start();
    }
    await eventually(
      () => hears(gus, [BEN, CAT], ANN) && hears(hal, [ANN, CAT], BEN) && hears(back, [ANN, BEN], CAT),
      60_000,
      'everyone heard across nodes again',
    );
  }, 180_000);
});
