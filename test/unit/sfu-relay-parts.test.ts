import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalBus } from '../../src/ports/bus/local-bus.js';
import { LmdbStore } from '../../src/ports/store/lmdb-store.js';
import { RelayOutlet } from '../../src/media/relay/relay-outlet.js';
import { RemotePublisher } from '../../src/media/relay/remote-publisher.js';
import { rtpSubject } from '../../src/media/relay/relay-subjects.js';
import { MAX_BATCH_PACKETS, encodeRelayBatch, readRelayBatch } from '../../src/media/relay/relay-batch.js';
import { TrackDirectory, type Publication } from '../../src/media/relay/track-directory.js';
import { PublishedTrack } from '../../src/media/webrtc/published-track.js';
import type { CodecChoice } from '../../src/media/webrtc/codec-policy.js';

// The relay's parts on one in-process bus and an LMDB store: what the cluster tests
// cannot reach directly (directory paging between rooms whose keys share a prefix, the
// interest that starts and stops relaying, keyframe requests forwarded, track ends).

const log = pino({ level: 'silent' });
const VP8: CodecChoice = { kind: 'video', name: 'VP8', payloadType: 96, clockRate: 90000, fmtp: undefined };
const OPUS: CodecChoice = {
  kind: 'audio',
  name: 'opus',
  payloadType: 111,
  clockRate: 48000,
  fmtp: undefined,
};
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The end of the current event-loop turn: when a relay batch goes out. */
const turnEnd = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A 40-byte RTP packet; `marker` (a video frame's last packet) by default. */
function rtp(seq: number, marker = true): Buffer {
  const p = Buffer.alloc(40);
  p[0] = 0x80;
  p[1] = marker ? 0x80 | 96 : 96;
  p.writeUInt16BE(seq, 2);
  p.writeUInt32BE(1234, 8);
  return p;
}

describe('TrackDirectory', () => {
  it("lists a room's publishers only, also when another room's key starts with its key", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfu-dir-'));
    const store = new LmdbStore(dir);
    cleanups.push(
      () => rmSync(dir, { recursive: true, force: true }),
      () => store.close(),
    );
    const d = new TrackDirectory(store);
    const pub = (node: string, relay: string): Publication => ({
      node,
      instance: 'i1',
      tracks: [
        { relay, kind: 'video', codec: { kind: 'video', name: 'VP8', payloadType: 96, clockRate: 90000 } },
      ],
    });
    // base64url("abc") = YWJj is a prefix of base64url("abcd") = YWJjZA.
    await d.announce('abc', 'alice', pub('a', 'r1aaaaaaaaaa'));
    await d.announce('abc', 'bob.x@y', pub('b', 'r2aaaaaaaaaa'));
    await d.announce('abcd', 'carol', pub('c', 'r3aaaaaaaaaa'));
    await d.announce('ab', 'dave', pub('c', 'r4aaaaaaaaaa'));
    expect((await d.publishersOf('abc')).map((p) => p.user).sort()).toEqual(['alice', 'bob.x@y']);
    expect((await d.publishersOf('abcd')).map((p) => p.user)).toEqual(['carol']);
    expect((await d.publishersOf('ab')).map((p) => p.user)).toEqual(['dave']);
    expect(await d.publishersOf('nope')).toEqual([]);

    // Withdrawing an older leg's tracks keeps a newer record (the publisher moved).
    await d.announce('abc', 'alice', pub('b', 'r5aaaaaaaaaa'));
    await d.withdraw('abc', 'alice', ['r1aaaaaaaaaa']);
    expect((await d.find('abc', 'alice'))?.node).toBe('b');
    await d.withdraw('abc', 'alice', ['r5aaaaaaaaaa']);
    expect(await d.find('abc', 'alice')).toBeUndefined();
  });
});

function setup(kind: 'audio' | 'video' = 'video'): {
  bus: LocalBus;
  outlet: RelayOutlet;
  origin: PublishedTrack;
  plis: number[];
  relay: string;
} {
  const bus = new LocalBus(log);
  const outlet = new RelayOutlet(bus, 'node-a', log);
  cleanups.push(() => outlet.close());
  const plis: number[] = [];
  const origin = new PublishedTrack(
    kind,
    kind === 'video' ? VP8 : OPUS,
    777,
    { isOpen: () => true, requestKeyframe: () => plis.push(Date.now()) > 0 },
    60_000,
    64,
  );
  return { bus, outlet, origin, plis, relay: outlet.offer(origin) };
}

describe('RelayOutlet and RemotePublisher', () => {
  const remoteOf = (bus: LocalBus, relay: string): RemotePublisher => {
    const r = new RemotePublisher(
      bus,
      'node-b',
      'alice',
      { node: 'node-a', instance: '', tracks: [{ relay, kind: 'video', codec: VP8 }] },
      { keyframeIntervalMs: 60_000, nackHistoryPackets: 64 },
      log,
    );
    cleanups.push(() => r.close('test over'));
    return r;
  };

  it('relays only while a node wants the track, each packet once, and stops on drop', async () => {
    const { bus, origin, relay } = setup();
    const onWire: number[] = [];
    bus.subscribe(rtpSubject(relay), (m) => onWire.push(m.data.length));
    origin.forward(rtp(1));
    await turnEnd();
    expect(onWire).toHaveLength(0); // nobody wants it: nothing on the bus

    const remote = remoteOf(bus, relay);
    expect(await remote.want()).toBe(true);
    remote.hold();
    origin.forward(rtp(2, false));
    // Held until the frame's last packet (marker bit), then both in one message (two
    // 40-byte packets behind their lengths).
    expect(onWire).toHaveLength(0);
    origin.forward(rtp(3));
    expect(onWire).toEqual([84]);
    await turnEnd();
    expect(remote.packetsIn).toBe(2);
    // The stand-in keeps its own history: the relayed packet is there under its seq.
    const stand = remote.tracks[0]!;
    expect(stand.outSsrc).not.toBe(origin.outSsrc);

    remote.release(); // the node's last leg left: `drop`
    expect(remote.closed).toBe(true);
    origin.forward(rtp(4));
    await turnEnd();
    expect(onWire).toHaveLength(1);
  });

  it("passes the receiving node's keyframe requests on; a new leg's forced one past the throttle", async () => {
    const { bus, origin, plis, relay } = setup();
    const remote = remoteOf(bus, relay);
    expect(await remote.want()).toBe(true);
    origin.forward(rtp(1)); // the origin has seen the publisher's SSRC
    await turnEnd(); // and the stand-in its first relayed packet
    const stand = remote.tracks[0]!;
    expect(stand.requestKeyframe(true)).toBe(true);
    expect(plis).toHaveLength(1);
    // Forced again (another new leg): the origin's throttle would refuse an unforced one.
    expect(stand.requestKeyframe(true)).toBe(true);
    expect(plis).toHaveLength(2);
    expect(origin.keyframeRequests).toBe(2);
  });

  it('ends the stand-in when the track ends, or when the node no longer has it', async () => {
    const { bus, outlet, origin, relay } = setup();
    const remote = remoteOf(bus, relay);
    expect(await remote.want()).toBe(true);
    const reasons: string[] = [];
    remote.onClose((r) => reasons.push(r));
    // Packets handed over in the turn the track ends still arrive, before the end.
    const seen: number[] = [];
    remote.tracks[0]!.addTarget({
      open: true,
      payloadType: 96,
      track: { sendMessageBinary: (p: Buffer) => seen.push(p.readUInt16BE(2)) },
    } as never);
    origin.forward(rtp(5));
    origin.forward(rtp(6));
    outlet.withdraw(relay, 'publisher left');
    expect(seen).toEqual([5, 6]);
    expect(reasons).toEqual(['publisher left']);

    const ghost = remoteOf(bus, 'abcdefgh12345678');
    expect(await ghost.want()).toBe(false);
    expect(ghost.closed).toBe(true);
    // No node answering the control subject at all: gone too.
    const orphan = new RemotePublisher(
      bus,
      'node-b',
      'zed',
      { node: 'node-x', instance: '', tracks: [{ relay: 'abcdefgh12345678', kind: 'video', codec: VP8 }] },
      { keyframeIntervalMs: 1000, nackHistoryPackets: 0 },
      log,
    );
    expect(await orphan.want()).toBe(false);
    expect(orphan.closed).toBe(true);
  });

  it('drops what is not RTP on the relay subject and keeps going', async () => {
    const { bus, origin, relay } = setup();
    const remote = remoteOf(bus, relay);
    expect(await remote.want()).toBe(true);
    bus.publish(rtpSubject(relay), new Uint8Array(0));
    bus.publish(rtpSubject(relay), Buffer.alloc(30, 0xff));
    bus.publish(rtpSubject(relay), Buffer.from([0x80, 201, 0, 7, ...Buffer.alloc(28)]));
    // Well-framed batches of packets that are not RTP: each such packet dropped, the
    // good one between them forwarded.
    const rtcp = Buffer.from([0x80, 201, 0, 7, ...Buffer.alloc(28)]);
    bus.publish(rtpSubject(relay), encodeRelayBatch([rtcp, rtp(7), Buffer.alloc(5, 0x80)]));
    // A good packet, then a length running past the end: the first kept, the rest dropped.
    bus.publish(rtpSubject(relay), Buffer.concat([encodeRelayBatch([rtp(8)]), Buffer.from([0, 200, 0x80])]));
    bus.publish('chorus.node.node-a.sfu', 'not json');
    bus.publish('chorus.node.node-a.sfu', JSON.stringify({ op: 'want', relay: '../x', node: 'b' }));
    expect(remote.malformed).toBe(6);
    expect(remote.packetsIn).toBe(2);
    origin.forward(rtp(9));
    await turnEnd();
    expect(remote.packetsIn).toBe(3);
  });
});

describe('relay batches', () => {
  const read = (b: Uint8Array): { ok: boolean; packets: number[][] } => {
    const packets: number[][] = [];
    const ok = readRelayBatch(b, (p) => packets.push([...p]));
    return { ok, packets };
  };

  it('reads back what was encoded, in order, as views of the batch', () => {
    const a = rtp(1);
    const b = Buffer.alloc(1200, 7);
    const c = Buffer.from([1]);
    const batch = encodeRelayBatch([a, b, c]);
    expect(batch.length).toBe(2 + 40 + 2 + 1200 + 2 + 1);
    expect(read(batch)).toEqual({ ok: true, packets: [[...a], [...b], [...c]] });
    // Inside a larger buffer at an offset (as a bus client hands a message over).
    const outer = Buffer.concat([Buffer.alloc(13, 9), batch, Buffer.alloc(5, 9)]);
    const views: Buffer[] = [];
    expect(readRelayBatch(outer.subarray(13, 13 + batch.length), (p) => views.push(p))).toBe(true);
    expect(views.map((v) => v.length)).toEqual([40, 1200, 1]);
    expect(views[0]!.readUInt16BE(2)).toBe(1);
    views[0]![0] = 0x42; // a view, not a copy
    expect(outer[13 + 2]).toBe(0x42);
  });

  it('rejects empty, truncated and garbage batches without throwing, keeping what came before', () => {
    const good = encodeRelayBatch([rtp(1), rtp(2)]);
    expect(read(new Uint8Array(0))).toEqual({ ok: false, packets: [] });
    expect(read(Uint8Array.of(0))).toEqual({ ok: false, packets: [] }); // half a length
    expect(read(Uint8Array.of(0, 0, 1, 2))).toEqual({ ok: false, packets: [] }); // zero length
    // Cut inside the second packet: the first delivered, then false.
    const cut = read(good.subarray(0, good.length - 1));
    expect(cut.ok).toBe(false);
    expect(cut.packets).toHaveLength(1);
    // Cut right after a whole packet's length field.
    expect(read(good.subarray(0, 42 + 2)).packets).toHaveLength(1);
    // Random bytes: whatever they parse to, it never throws and never reads past the end.
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      const junk = Buffer.alloc(1 + (i % 300));
      for (let j = 0; j < junk.length; j++)
        junk[j] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
      let total = 0;
      readRelayBatch(junk, (p) => (total += 2 + p.length));
      expect(total).toBeLessThanOrEqual(junk.length);
    }
  });

  /** Subscribes to a relay subject, collecting each message's sequence numbers. */
  const wire = (bus: LocalBus, relay: string): number[][] => {
    const seqs: number[][] = [];
    bus.subscribe(rtpSubject(relay), (m) => {
      const s: number[] = [];
      readRelayBatch(m.data, (p) => s.push(p.readUInt16BE(2)));
      seqs.push(s);
    });
    return seqs;
  };
  const want = async (bus: LocalBus, relay: string): Promise<void> => {
    const r = await bus.request('chorus.node.node-a.sfu', JSON.stringify({ op: 'want', relay, node: 'b' }));
    expect(JSON.parse(Buffer.from(r).toString())).toEqual({ ok: true });
  };

  it("sends a video frame's packets as one message at its marker, a full batch at once", async () => {
    const { bus, outlet, origin, relay } = setup();
    const seqs = wire(bus, relay);
    await want(bus, relay);
    // Two frames of three packets: each goes when its last packet is in.
    for (let i = 0; i < 6; i++) origin.forward(rtp(i, i % 3 === 2));
    expect(seqs).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    // A frame bigger than a batch: the first 64 packets at once, the rest with the marker.
    for (let i = 0; i < MAX_BATCH_PACKETS + 3; i++) origin.forward(rtp(100 + i, i === MAX_BATCH_PACKETS + 2));
    expect(seqs).toHaveLength(4);
    expect(seqs[2]).toEqual([...Array(MAX_BATCH_PACKETS).keys()].map((k) => 100 + k));
    expect(seqs[3]).toEqual([164, 165, 166]);
    expect(outlet.packetsSent).toBe(6 + MAX_BATCH_PACKETS + 3);
    expect(outlet.messagesSent).toBe(4);
  });

  it('sends a held video batch when its frame end never comes (lost marker)', async () => {
    const { bus, origin, relay } = setup();
    const seqs = wire(bus, relay);
    await want(bus, relay);
    origin.forward(rtp(1, false));
    origin.forward(rtp(2, false));
    await turnEnd();
    expect(seqs).toHaveLength(0); // a turn's end does not end a video frame
    await vi.waitFor(() => expect(seqs).toEqual([[1, 2]]), { timeout: 5000 });
    // The timer is re-armed for the next frame, and a marker still flushes at once.
    origin.forward(rtp(3, false));
    origin.forward(rtp(4));
    expect(seqs).toEqual([
      [1, 2],
      [3, 4],
    ]);
    origin.forward(rtp(5, false));
    await vi.waitFor(() => expect(seqs).toEqual([[1, 2], [3, 4], [5]]), { timeout: 5000 });
  });

  it("sends an audio track's packets of one event-loop turn together, marker or not", async () => {
    const { bus, outlet, origin, relay } = setup('audio');
    const seqs = wire(bus, relay);
    await want(bus, relay);
    origin.forward(rtp(1)); // an audio marker starts a talk spurt: no flush
    origin.forward(rtp(2, false));
    expect(seqs).toHaveLength(0);
    await turnEnd();
    expect(seqs).toEqual([[1, 2]]);
    expect(outlet.messagesSent).toBe(1);
  });
});
