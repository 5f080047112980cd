import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';
import { NdcPublisher, NdcSubscriber } from '../fixtures/ndc-peer.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { buildNack, buildPli, buildReceiverReport } from '../../src/media/webrtc/rtp.js';
import { LossyUdpRelay, answerThroughRelay, offerWithoutCandidates } from '../fixtures/lossy-udp-relay.js';

// No sleeps in this file: where a test shows that something does NOT happen (a throttled
// request, a leg that is not reaped), time passing is shown by an observable instead (a
// marker the server has demonstrably handled, a leg the same timeout did reap).

let t: TestServer;
let udpPort: number;
/** Clients and relays to close even when a test fails. */
const toClose: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of toClose.splice(0)) c.close();
});

async function createRoom(admin: string): Promise<string> {
  const res = await fetch(`${t.url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: admin }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

interface TrackStats {
  kind: string;
  codec: string;
  packetsIn: number;
  keyframeRequests: number;
  retransmissions: number;
  subscribers: Array<{
    user: string;
    lossPercent: number;
    cumulativeLost: number;
    jitterMs: number;
    reportAgeMs: number | null;
  }>;
}
interface RoomStats {
  id: string;
  publishers: Array<{ user: string; tracks: TrackStats[] }>;
}

/** A room's media stats (a plain REST route: no socket needed, so through inject). */
async function roomStats(room: string): Promise<RoomStats> {
  const res = await t.server.app.inject({ method: 'GET', url: `/webrtc/room/${room}/stats` });
  expect(res.statusCode).toBe(200);
  return res.json<RoomStats>();
}

/** The published video track of a one-publisher room (undefined until it is published). */
async function videoStats(room: string): Promise<TrackStats | undefined> {
  return (await roomStats(room)).publishers[0]?.tracks.find((x) => x.kind === 'video');
}

/** A counter of /metrics (one scrape). */
async function metric(name: string): Promise<number> {
  const text = (await t.server.app.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]);
}

/**
 * A receiver report about `ssrc` whose cumulative-loss field carries `marker`: sent in the
 * same compound RTCP packet as other feedback, it shows in the room stats once the server
 * has handled that packet, and so everything sent before it on the same leg.
 */
const marked = (ssrc: number, marker: number, ...rest: Buffer[]): Buffer =>
  Buffer.concat([
    buildReceiverReport(0x1234, ssrc, { fractionLost: 0, cumulativeLost: marker, jitter: 0 }),
    ...rest,
  ]);

/** Waits until the server has handled the RTCP packet that carried `marker`. */
async function handled(room: string, marker: number): Promise<void> {
  await eventually(
    async () => (await videoStats(room))?.subscribers.some((s) => s.cumulativeLost === marker) ?? false,
    10_000,
    `the server to handle the RTCP packet marked ${marker}`,
  );
}

/** A few turns of the event loop: what finalizers queued by a collection need to run. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

beforeAll(async () => {
  udpPort = await freeUdpPort();
  t = await startTestServer({
    // A 3 s keyframe interval: long enough that a burst of requests sent at once is handled
    // well inside one interval, even on a loaded machine (see the throttle test).
    webrtc: { udpPort, bindAddress: '127.0.0.1', keyframeIntervalMs: 3000, peerTimeoutSeconds: 2 },
  });
});
afterAll(async () => {
  await t.close();
});

describe('SFU through the Blue Sky routes', () => {
  it("forwards a publisher to a subscriber with the subscriber's payload types and the SFU's SSRCs", async () => {
    const room = await createRoom('alice');
    const pub = new NdcPublisher();
    toClose.push(pub);
    const r = await pub.publish(t.url, room, 'alice');
    expect(r.status).toBe(200);
    // The answer keeps one codec per section and its RTX (#18); no RED.
    expect(r.answer).toMatch(/m=video \d+ UDP\/TLS\/RTP\/SAVPF 96 97\r\n/);
    expect(r.answer).toMatch(/a=fmtp:97 apt=96/);
    expect(r.answer).not.toMatch(/red\//i);
    pub.start();
    await eventually(() => t.server.engine.sfu.stats().publishedTracks === 2, 10_000, 'published tracks');

    const sub = new NdcSubscriber(100, 109);
    toClose.push(sub);
    const s = await sub.subscribe(t.url, room, 'bob', 'alice');
    expect(s.status).toBe(200);
    const videoSsrc = Number(/m=video[\s\S]*?a=ssrc:(\d+) /.exec(s.answer!)![1]);
    const audioSsrc = Number(/m=audio[\s\S]*?a=ssrc:(\d+) /.exec(s.answer!)![1]);
    expect(videoSsrc).not.toBe(NdcPublisher.VIDEO_SSRC);
    await eventually(
      () => sub.videoPackets.length > 20 && sub.audioPackets.length > 20,
      10_000,
      'forwarded media',
    );
    expect(sub.videoPackets.every((p) => (p[1]! & 0x7f) === 100 && p.readUInt32BE(8) === videoSsrc)).toBe(
      true,
    );
    expect(sub.audioPackets.every((p) => (p[1]! & 0x7f) === 109 && p.readUInt32BE(8) === audioSsrc)).toBe(
      true,
    );

    // A new subscriber triggered a keyframe request at the publisher.
    await eventually(() => pub.plis() >= 1, 5000, 'a PLI at the publisher');
    sub.close();
    pub.close();
  }, 30_000);
});

describe('RTCP', () => {
  it('throttles keyframe requests from subscribers to one per interval per track', async () => {
    const room = await createRoom('kf-admin');
    const pub = new NdcPublisher();
    toClose.push(pub);
    await pub.publish(t.url, room, 'kf-pub');
    pub.start();
    const sub = new NdcSubscriber();
    toClose.push(sub);
    await sub.subscribe(t.url, room, 'kf-sub', 'kf-pub');
    await eventually(() => sub.videoPackets.length > 5, 10_000, 'media');
    await eventually(() => pub.plis() >= 1, 5000, 'the subscribe-time PLI');
    const ssrc = sub.videoPackets[0]!.readUInt32BE(8);
    const requests = async () => (await videoStats(room))!.keyframeRequests;
    // A subscriber's request passes once the interval after the last one is over: ask
    // until one does (no guess at how long that takes on this machine).
    const afterSubscribe = await requests();
    await eventually(
      async () => {
        sub.video.sendMessageBinary(buildPli(0x1234, ssrc));
        return (await requests()) > afterSubscribe;
      },
      15_000,
      "a subscriber's keyframe request to pass",
    );
    const passed = await requests();
    // A new interval has just begun. Twenty more requests at once, the last riding with a
    // marker: once the server has handled it, it has handled all twenty, well inside the
    // 3 s interval; none may pass (one, if this machine stalled for a whole interval).
    for (let i = 0; i < 19; i++) sub.video.sendMessageBinary(buildPli(0x1234, ssrc));
    sub.video.sendMessageBinary(marked(ssrc, 7001, buildPli(0x1234, ssrc)));
    await handled(room, 7001);
    expect((await requests()) - passed).toBeLessThanOrEqual(1);
    // And each that passed reached the publisher.
    await eventually(() => pub.plis() >= passed, 5000, 'the PLIs at the publisher');
    sub.close();
    pub.close();
  }, 30_000);

  it('resends a lost packet when the subscriber NACKs it', async () => {
    const room = await createRoom('nack-admin');
    const pub = new NdcPublisher();
    toClose.push(pub);
    await pub.publish(t.url, room, 'nack-pub');
    pub.start();
    // The subscriber reaches the server through a relay that loses three video packets.
    let videoSeen = 0;
    const relay = new LossyUdpRelay(udpPort, (_i, size) => size > 150 && [40, 41, 42].includes(videoSeen++));
    const relayPort = await relay.start();
    toClose.push(relay);
    const sub = new NdcSubscriber();
    toClose.push(sub);
    // The answer points at the relay; without its own candidates in the offer, the server
    // can only reach the client through the relay, so every packet crosses it.
    await sub.subscribe(
      t.url,
      room,
      'nack-sub',
      'nack-pub',
      answerThroughRelay(relayPort),
      offerWithoutCandidates,
    );
    await eventually(() => relay.dropped === 3 && sub.videoPackets.length > 60, 10_000, 'media with losses');
    const seqs = new Set(sub.videoPackets.map((p) => p.readUInt16BE(2)));
    const sorted = [...seqs].sort((a, b) => a - b);
    const missing: number[] = [];
    for (let s = sorted[0]!; s < sorted[sorted.length - 1]!; s++) if (!seqs.has(s)) missing.push(s);
    expect(missing).toHaveLength(3);
    const ssrc = sub.videoPackets[0]!.readUInt32BE(8);
    const retransmitted = async () =>
      Number(
        /^chorus_sfu_rtp_packets_retransmitted_total (\d+)/m.exec(
          await (await fetch(`${t.url}/metrics`)).text(),
        )?.[1],
      );
    const before = await retransmitted();
    // One NACK names all three: the first by PID, the next two by the bitmask.
    expect(missing[1]).toBe(missing[0]! + 1);
    expect(missing[2]).toBe(missing[0]! + 2);
    sub.video.sendMessageBinary(buildNack(0x4321, ssrc, missing[0]!, 0b11));
    await eventually(
      () => missing.every((m) => sub.videoPackets.some((p) => p.readUInt16BE(2) === m)),
      5000,
      'the retransmissions',
    );
    for (const m of missing) {
      const resent = sub.videoPackets.find((p) => p.readUInt16BE(2) === m)!;
      expect(resent[1]! & 0x7f).toBe(100); // the subscriber's payload type
      expect(resent.readUInt32BE(8)).toBe(ssrc);
    }
    // /metrics reads the SFU at most every 100 ms: wait for the figure, which must be exactly
    // three more (a fourth would never make it equal).
    await eventually(async () => (await retransmitted()) === before + 3, 5000, 'three retransmissions');

    // A NACK flood (100 NACKs of 17 packets each) is served up to the per-leg ceiling: a
    // bucket of 400 a second with a burst of 400, plus what it earns while the flood is
    // handled. The last NACK rides with a marker, so the count is read once the server has
    // handled all of them, not after a guessed delay.
    const latest = sub.videoPackets[sub.videoPackets.length - 1]!.readUInt16BE(2);
    const resent = async () => (await videoStats(room))!.retransmissions;
    const floodBefore = await resent();
    // Each names 17 of the last 50 packets the subscriber got (so the history has them).
    const nack = (i: number) => buildNack(0x4321, ssrc, (latest - 50 + (i % 30)) & 0xffff, 0xffff);
    for (let i = 0; i < 99; i++) sub.video.sendMessageBinary(nack(i));
    sub.video.sendMessageBinary(marked(ssrc, 7002, nack(99)));
    await handled(room, 7002);
    const served = (await resent()) - floodBefore;
    // A full burst (less the three answered just above, if the bucket has not earned them
    // back yet), and far from all 1,700: serving them all would take the flood over 3 s
    // to handle; 1,200 allows it 2 s on a loaded machine.
    expect(served).toBeGreaterThanOrEqual(400 - 3);
    expect(served).toBeLessThanOrEqual(1200);
    const count = sub.videoPackets.length;
    await eventually(() => sub.videoPackets.length > count + 20, 5000, 'media after the flood');
    sub.close();
    pub.close();
    relay.close();
  }, 30_000);
});

describe('reception stats', () => {
  it("shows each subscriber's loss and jitter from its receiver reports, per room and in /metrics", async () => {
    const room = await createRoom('stats-admin');
    const pub = new NdcPublisher();
    toClose.push(pub);
    await pub.publish(t.url, room, 'stats-pub');
    pub.start();
    const sub = new NdcSubscriber();
    toClose.push(sub);
    expect((await sub.subscribe(t.url, room, 'stats-sub', 'stats-pub')).status).toBe(200);
    await eventually(() => sub.videoPackets.length > 5, 10_000, 'media');
    const ssrc = sub.videoPackets[0]!.readUInt32BE(8);
    // As a browser on a bad link would: a quarter lost lately, 12 in all, 10 ms of jitter.
    sub.video.sendMessageBinary(
      buildReceiverReport(0x4321, ssrc, { fractionLost: 0.25, cumulativeLost: 12, jitter: 900 }),
    );
    const stats = () => roomStats(room);
    await eventually(
      async () =>
        (await stats()).publishers[0]?.tracks.find((x) => x.kind === 'video')?.subscribers[0]?.lossPercent ===
        25,
      5000,
      'the report in the room stats',
    );
    const s = await stats();
    expect(s.id).toBe(room);
    expect(s.publishers.map((p) => p.user)).toEqual(['stats-pub']);
    const video = s.publishers[0]!.tracks.find((x) => x.kind === 'video')!;
    expect(video.codec).toBe('VP8');
    expect(video.packetsIn).toBeGreaterThan(5);
    expect(video.subscribers).toEqual([
      {
        user: 'stats-sub',
        lossPercent: 25,
        cumulativeLost: 12,
        jitterMs: 10,
        reportAgeMs: expect.any(Number),
      },
    ]);
    // The audio leg's receiver (libdatachannel's RtcpReceivingSession) reports by itself.
    await eventually(
      async () =>
        (await stats()).publishers[0]!.tracks.find((x) => x.kind === 'audio')!.subscribers[0]!.reportAgeMs !==
        null,
      5000,
      'an audio receiver report',
    );
    // /metrics reads the SFU at most every 100 ms: wait until it shows what the room does.
    await eventually(
      async () =>
        (await metric('chorus_sfu_subscriber_loss_ratio\\{stat="max"\\}')) >= 0.25 &&
        (await metric('chorus_sfu_subscriber_legs_reporting')) >= 2 &&
        (await metric('chorus_sfu_subscriber_packets_lost')) >= 12,
      5000,
      'the reports in /metrics',
    );
    expect((await fetch(`${t.url}/webrtc/room/no-such-room/stats`)).status).toBe(404);
  }, 30_000);
});

describe('lifetimes', () => {
  it('keeps forwarding across a full garbage collection', async () => {
    // node-datachannel closes a native track when a JS wrapper of it is collected; the SFU
    // must hold every wrapper it is given. (A dropped onTrack wrapper once silently
    // stopped every subscriber at the first major GC.)
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const room = await createRoom('gc-admin');
    const pub = new NdcPublisher();
    toClose.push(pub);
    await pub.publish(t.url, room, 'gc-pub');
    pub.start();
    const sub = new NdcSubscriber();
    toClose.push(sub);
    expect((await sub.subscribe(t.url, room, 'gc-sub', 'gc-pub')).status).toBe(200);
    await eventually(() => sub.videoPackets.length > 10 && sub.audioPackets.length > 10, 10_000, 'media');
    gc();
    await turns(5);
    gc();
    const [v, a] = [sub.videoPackets.length, sub.audioPackets.length];
    await eventually(
      () => sub.videoPackets.length > v + 30 && sub.audioPackets.length > a + 30,
      5000,
      'media after the collection',
    );
    expect(pub.video.isOpen()).toBe(true);
  }, 30_000);

  it('keeps a subscriber that answers sender reports past the silence timeout, and closes one that does not', async () => {
    const room = await createRoom('quiet-admin');
    const pub = new NdcPublisher();
    toClose.push(pub);
    await pub.publish(t.url, room, 'quiet-pub');
    pub.start();
    const talker = new NdcSubscriber();
    const mute = new NdcSubscriber(100, 109, false);
    toClose.push(talker, mute);
    expect((await talker.subscribe(t.url, room, 'quiet-talker', 'quiet-pub')).status).toBe(200);
    expect((await mute.subscribe(t.url, room, 'quiet-mute', 'quiet-pub')).status).toBe(200);
    await eventually(
      () => talker.videoPackets.length > 5 && mute.videoPackets.length > 5,
      10_000,
      'media to both',
    );
    // The server closes the mute one's leg at the silence timeout (2 s). The talker
    // subscribed first, so the same timeout has run out for it too: that it is still
    // there shows its receiver reports kept it.
    const receivers = async () => (await videoStats(room))!.subscribers.map((s) => s.user).sort();
    expect(await receivers()).toEqual(['quiet-mute', 'quiet-talker']);
    await eventually(
      async () => (await receivers()).join() === 'quiet-talker',
      15_000,
      "the mute leg to be closed, the talker's kept",
    );
    // Media keeps reaching the talker; once it has got more (so what was already on its
    // way to both has arrived), the mute one gets nothing while the talker gets plenty.
    const reaped = talker.videoPackets.length;
    await eventually(() => talker.videoPackets.length > reaped + 20, 10_000, 'media to the talker');
    const muteBefore = mute.videoPackets.length;
    const talkerBefore = talker.videoPackets.length;
    await eventually(
      () => talker.videoPackets.length > talkerBefore + 50,
      10_000,
      'more media to the talker',
    );
    expect(mute.videoPackets.length).toBe(muteBefore);
    expect(await receivers()).toEqual(['quiet-talker']);
  }, 40_000);

  it("a publisher leaving ends its subscribers' legs, and closed clients free everything", async () => {
    // Earlier tests' legs are reaped by the silence timeout (2 s here).
    await eventually(() => t.server.engine.sfu.stats().peers === 0, 10_000, 'a clean start');
    // Another room whose media keeps flowing: the clock for "nothing more arrives" below.
    const clockRoom = await createRoom('clock-admin');
    const clockPub = new NdcPublisher();
    const clock = new NdcSubscriber();
    toClose.push(clockPub, clock);
    await clockPub.publish(t.url, clockRoom, 'clock-pub');
    clockPub.start();
    expect((await clock.subscribe(t.url, clockRoom, 'clock-sub', 'clock-pub')).status).toBe(200);
    await eventually(() => clock.videoPackets.length > 5, 10_000, 'media in the other room');
    const base = t.server.engine.sfu.stats();
    const room = await createRoom('life-admin');
    const pub = new NdcPublisher();
    toClose.push(pub);
    await pub.publish(t.url, room, 'life-pub');
    pub.start();
    const subs = [new NdcSubscriber(), new NdcSubscriber()];
    toClose.push(...subs);
    for (const [i, s] of subs.entries())
      expect((await s.subscribe(t.url, room, `life-sub${i}`, 'life-pub')).status).toBe(200);
    await eventually(() => subs.every((s) => s.videoPackets.length > 5), 10_000, 'media to both');
    expect(t.server.engine.sfu.stats().peers).toBe(base.peers + 3);
    const info = async () =>
      (await (await fetch(`${t.url}/webrtc/room/${room}`)).json()) as { publishers: string[] };
    expect((await info()).publishers).toEqual(['life-pub']);

    // One subscriber hangs up: only its leg goes.
    subs[0]!.close();
    await eventually(
      () => t.server.engine.sfu.stats().peers === base.peers + 2,
      10_000,
      'the subscriber leg to close',
    );

    // The publisher leaves: its remaining subscriber's leg is closed by the server.
    pub.close();
    await eventually(() => t.server.engine.sfu.stats().peers === base.peers, 10_000, 'every leg to close');
    expect(t.server.engine.sfu.stats().forwardTargets).toBe(base.forwardTargets);
    // Nothing more is forwarded to the remaining subscriber: once the other room's
    // subscriber has got more (what was on its way has arrived), it gets nothing while
    // the other room's gets plenty.
    const flushed = clock.videoPackets.length;
    await eventually(() => clock.videoPackets.length > flushed + 20, 10_000, 'media in the other room');
    const received = subs[1]!.videoPackets.length;
    const ticks = clock.videoPackets.length;
    await eventually(() => clock.videoPackets.length > ticks + 50, 10_000, 'more media in the other room');
    expect(subs[1]!.videoPackets.length).toBe(received);
    expect((await info()).publishers).toEqual([]);
    subs[1]!.close();
  }, 30_000);
});
