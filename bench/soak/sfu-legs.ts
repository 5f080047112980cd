// A soak worker (its own process, so the clients' DTLS and SRTP work does not share a
// core's event loop with the orchestrator): connects the Blue Sky legs of some rooms
// (one node-datachannel publisher sending a little fake VP8 and Opus, the others
// subscribers of it), waits until media reaches each subscriber, reports, and on "drop"
// closes every peer connection without any request to the server and exits.
//
//   argv: <base url> <JSON: { rooms: string[], legsPerRoom: number[] }>
import { Audio, type PeerConnection, RtcpReceivingSession, type Track, Video } from 'node-datachannel';
import { NdcClient, type Exchange } from '../../test/fixtures/ndc-peer.js';
import { Failures } from './failures.js';

const [, , base, planText] = process.argv;
const plan = JSON.parse(planText!) as { rooms: string[]; legsPerRoom: number[] };
const MEDIA_TIMEOUT_MS = 10_000;
// The orchestrator gone (killed) must not leave this process holding peers.
process.once('disconnect', () => process.exit(0));
/** Refused legs (503: the SFU is full or busy) are retried this often, after its Retry-After. */
const RETRIES = 3;

class SoakPublisher extends NdcClient {
  video!: Track;
  audio!: Track;
  protected addTracks(pc: PeerConnection): void {
    const v = new Video('video', 'SendOnly');
    v.addVideoCodec(96, 'VP8');
    v.addSSRC(1111, 'soak', 'soak', 'soakvideo');
    this.video = pc.addTrack(v);
    const a = new Audio('audio', 'SendOnly');
    a.addOpusCodec(111);
    a.addSSRC(2222, 'soak', 'soak', 'soakaudio');
    this.audio = pc.addTrack(a);
    // RTCP from the SFU (PLI, RR) is read and dropped.
    this.video.onMessage(() => undefined);
    this.audio.onMessage(() => undefined);
  }
  publish(room: string): Promise<Exchange> {
    return this.connect(
      base!,
      `/webrtc/sdp/m/${room}/c/pub/p/pub/s/true`,
      (s) => s,
      (s) => s,
    );
  }
}

class SoakSubscriber extends NdcClient {
  video!: Track;
  // Held: node-datachannel closes a track whose JS wrapper is garbage-collected.
  audio!: Track;
  private mediaSeen = false;
  private onMedia: (() => void) | undefined;
  /** Resolves true once media (not RTCP) has arrived, false after `ms` without any. */
  awaitMedia(ms: number): Promise<boolean> {
    if (this.mediaSeen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.onMedia = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
  protected addTracks(pc: PeerConnection): void {
    const v = new Video('v0', 'RecvOnly');
    v.addVideoCodec(96, 'VP8');
    this.video = pc.addTrack(v);
    const a = new Audio('a0', 'RecvOnly');
    a.addOpusCodec(111);
    this.audio = pc.addTrack(a);
    // Receiver reports, as a browser sends: the SFU's silence watchdog keeps the leg.
    this.video.setMediaHandler(new RtcpReceivingSession());
    this.audio.setMediaHandler(new RtcpReceivingSession());
    const onMessage = (m: Buffer): void => {
      // RTCP (packet types 192-223) shares the track; anything else is media.
      if (this.mediaSeen || m.length < 2 || (m[1]! >= 192 && m[1]! <= 223)) return;
      this.mediaSeen = true;
      this.onMedia?.();
    };
    this.video.onMessage(onMessage);
    this.audio.onMessage(onMessage);
  }
  subscribe(room: string, user: string): Promise<Exchange> {
    return this.connect(
      base!,
      `/webrtc/sdp/m/${room}/c/${user}/p/pub/s/false`,
      (s) => s,
      (s) => s,
    );
  }
}

const failures = new Failures();
const clients: NdcClient[] = [];
let connected = 0;
let refused = 0;
let noMedia = 0;
let clientRetries = 0;

/** The test client's exchange has no deadline of its own; the worker must always report. */
const LEG_TIMEOUT_MS = 60_000;

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)),
  );
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One leg, retried after a 503 with a new client (a peer connection that has made its
 * offer cannot gather again); the connected client, or undefined.
 */
async function leg<C extends NdcClient>(
  make: () => C,
  join: (c: C) => Promise<Exchange>,
): Promise<C | undefined> {
  for (let attempt = 0; ; attempt++) {
    const client = make();
    clients.push(client);
    try {
      const r = await withTimeout(join(client), LEG_TIMEOUT_MS, 'leg not connected within 60 s');
      if (r.status === 200) {
        connected++;
        return client;
      }
      client.close();
      if (r.status !== 503 || attempt >= RETRIES) {
        failures.add(`sdp: HTTP ${r.status} ${r.error ?? ''}`.trim());
        return undefined;
      }
      refused++;
      await new Promise((resolve) => setTimeout(resolve, 5000));
    } catch (err) {
      client.close();
      // The test client's own DTLS race (see NdcClient) can outlast its retries under
      // load; a browser would not hit it, so one more client is tried before counting it.
      if (attempt < RETRIES && /no connection after/.test(String(err))) {
        clientRetries++;
        continue;
      }
      failures.add(err);
      return undefined;
    }
  }
}

async function inBatches(count: number, batch: number, fn: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < count; i += batch)
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => fn(i + j)));
}

const publishers: Array<SoakPublisher | undefined> = [];
await inBatches(plan.rooms.length, 10, async (i) => {
  publishers[i] = await leg(
    () => new SoakPublisher('soak-publisher'),
    (p) => p.publish(plan.rooms[i]!),
  );
});

// Every publisher sends one video and one audio packet each 100 ms: enough to show that
// media flows on every leg, little enough that 500 legs do not saturate the SFU.
const video = Buffer.alloc(200, 0x5a);
video[0] = 0x80;
video[1] = 96;
video.writeUInt32BE(1111, 8);
const audio = Buffer.alloc(80, 0x33);
audio[0] = 0x80;
audio[1] = 111;
audio.writeUInt32BE(2222, 8);
let seq = 0;
const sender = setInterval(() => {
  seq++;
  video.writeUInt16BE(seq & 0xffff, 2);
  video.writeUInt32BE(seq * 9000, 4);
  audio.writeUInt16BE(seq & 0xffff, 2);
  audio.writeUInt32BE(seq * 4800, 4);
  for (const p of publishers) {
    if (!p) continue;
    try {
      if (p.video.isOpen()) p.video.sendMessageBinary(video);
      if (p.audio.isOpen()) p.audio.sendMessageBinary(audio);
    } catch {
      // A track closing under us: the leg's failure is counted where it shows.
    }
  }
}, 100);

const subscriptions: Array<{ room: number; user: string }> = [];
plan.rooms.forEach((_, room) => {
  if (!publishers[room]) return;
  for (let k = 1; k < plan.legsPerRoom[room]!; k++) subscriptions.push({ room, user: `sub${k}` });
});
// Subscribers of a room whose publisher failed were never attempted.
const unattempted = plan.legsPerRoom.reduce((s, n) => s + n, 0) - plan.rooms.length - subscriptions.length;
if (unattempted > 0) failures.merge({ 'subscriber not attempted: its publisher failed': unattempted });
await inBatches(subscriptions.length, 10, async (i) => {
  const { room, user } = subscriptions[i]!;
  const s = await leg(
    () => new SoakSubscriber('soak-subscriber'),
    (c) => c.subscribe(plan.rooms[room]!, user),
  );
  if (s) {
    if (!(await s.awaitMedia(MEDIA_TIMEOUT_MS))) {
      noMedia++;
      failures.add('subscriber got no media within 10 s');
    }
  }
});

process.send!({
  type: 'ready',
  legs: plan.legsPerRoom.reduce((s, n) => s + n, 0),
  connected,
  refused,
  noMedia,
  clientRetries,
  failures: failures.toJSON(),
});
process.on('message', (m: { type: string }) => {
  if (m.type !== 'drop') return;
  clearInterval(sender);
  // No request to the server: the peers just close, as a killed tab's would.
  for (const c of clients) c.close();
  process.send!({ type: 'dropped' }, () => process.exit(0));
});
