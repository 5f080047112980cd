import type { Logger } from 'pino';
import {
  NoRespondersError,
  subjectToken,
  type Bus,
  type BusMessage,
  type BusSubscription,
} from '../../ports/bus/bus.js';
import { pingSubject } from '../../ports/membership/membership.js';
import type { StreamChannel } from '../../media/stream/stream-channel.js';
import type { PublisherControl } from '../../media/stream/stream-sink.js';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import { busJson, readBusJson } from '../bus-json.js';
import {
  CONTROL_FRAME,
  ChunkAssembler,
  ChunkFrameHeader,
  LIVE,
  dataSubject,
  interestSubject,
  isControlFrame,
  type ControlFrame,
  type Interest,
} from './relay-frames.js';
import type { RelayCounters, RelaySelf } from './relay-counters.js';

/** How often a following node says it still wants the channel. */
export const INTEREST_EVERY_MS = 2000;
/** Silence from the publisher's node past which it is asked whether it still runs. */
const SILENCE_PING_MS = 3000;
/** Silence past which the publisher is taken for gone, whatever its node says. */
const SILENCE_GONE_MS = 10_000;
const PING_TIMEOUT_MS = 2000;
/** Asking again for a replay (a start or alive frame of a session not followed yet) at most this often. */
const ASK_INTERVAL_MS = 500;

/** The publisher is on another node: kills are that node's coordinator's, never this one's. */
const REMOTE_PUBLISHER: PublisherControl = { kill: () => undefined, relayed: true };

type State =
  /** No publisher known. */
  | 'waiting'
  /** A publisher is known; its replay has not come yet (live chunks are not ours yet). */
  | 'syncing'
  /** Its replay is coming in. */
  | 'replaying'
  /** Live chunks feed the channel. */
  | 'live';

/**
 * The receivers' side of a channel published on another node: this node follows the
 * channel's data subject and feeds what arrives into its own StreamChannel as if it were
 * the publisher, so its receivers, its cache (a late joiner here starts on a keyframe)
 * and its backpressure work as on one node. It announces itself on the interest subject
 * every 2 s while it has receivers, so the publisher's node relays only while someone
 * wants the channel and forgets a node that died.
 */
export class ChannelInbound {
  private state: State = 'waiting';
  private session = 0;
  private publisherNode = '';
  private publisherInstance = '';
  private nextSeq = 0;
  private lastHeard = 0;
  private lastAsked = 0;
  private lastAnnounced = 0;
  private pinging = false;
  private closed = false;
  private readonly sub: BusSubscription;
  private readonly header = new ChunkFrameHeader();
  private readonly assembler: ChunkAssembler;

  constructor(
    private readonly bus: Bus,
    private readonly self: RelaySelf,
    readonly channel: StreamChannel,
    maxChunkBytes: number,
    private readonly counters: RelayCounters,
    private readonly busLog: ThrottledLog,
    private readonly log: Logger,
  ) {
    this.assembler = new ChunkAssembler(maxChunkBytes);
    this.sub = bus.subscribe(dataSubject(channel.id), (m) => this.onFrame(m));
    this.announce(Date.now());
  }

  /** Every second: the interest announcement, and a check that the publisher still runs. */
  tick(now: number): void {
    if (now - this.lastAnnounced >= INTEREST_EVERY_MS) this.announce(now);
    if (this.state === 'waiting') return;
    const silent = now - this.lastHeard;
    if (silent > SILENCE_GONE_MS) this.publisherGone('silent');
    else if (silent > SILENCE_PING_MS) this.askPublisherNode();
  }

  /** The publisher's node has gone from the cluster. */
  nodeGone(node: string, instance: string): void {
    if (this.state !== 'waiting' && node === this.publisherNode && instance === this.publisherInstance)
      this.publisherGone('node gone');
  }

  /** A publisher on this node takes the channel over: the remote one is over here. */
  dropRemote(): void {
    this.endRemote();
  }

  /** No receivers here any more (or a local publisher): stop following. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sub.unsubscribe();
    this.endRemote();
    this.publishInterest(false, Date.now());
  }

  private onFrame(msg: BusMessage): void {
    if (this.closed) return;
    const data = msg.data;
    if (isControlFrame(data)) {
      const f = readBusJson(CONTROL_FRAME, data, { surface: 'stream', subject: msg.subject }, this.busLog);
      if (f) this.onControl(f);
      else this.counters.dropped++;
      return;
    }
    const h = this.header;
    if (!h.read(data)) {
      this.counters.dropped++;
      this.busLog.warn(
        { subject: msg.subject, bytes: data.length },
        'stream: relay frame of the wrong shape, dropped',
      );
      return;
    }
    if (h.session !== this.session) return; // another publishing of the channel
    const wanted = h.kind === LIVE ? this.state === 'live' : this.state === 'replaying';
    if (!wanted) return; // live chunks before our replay (it holds them), or another node's replay
    this.lastHeard = Date.now();
    const chunk = this.assembler.add(h, data);
    if (this.assembler.broken) {
      this.counters.dropped++;
      this.busLog.warn({ subject: msg.subject }, 'stream: relay chunk broken off or too big, dropped');
    }
    if (!chunk) return;
    if (h.kind === LIVE) {
      if (h.seq !== this.nextSeq) this.counters.gaps += (h.seq - this.nextSeq) >>> 0;
      this.nextSeq = (h.seq + 1) >>> 0;
      this.counters.chunksReceived++;
      this.counters.bytesReceived += chunk.length;
    }
    this.channel.publish(chunk);
  }

  private onControl(f: ControlFrame): void {
    const now = Date.now();
    if ((f.t === 'start' || f.t === 'alive' || f.t === 'replay') && !this.self.isMember(f.node)) {
      this.busLog.warn(
        { node: f.node, frame: f.t },
        'stream: relay frame from a node not in the cluster, ignored',
      );
      return;
    }
    switch (f.t) {
      case 'start':
      case 'alive':
        if (f.session === this.session) {
          this.lastHeard = now;
          return;
        }
        // Another publishing than the one followed: the old one is over (its publisher
        // left or its node died and the channel was published again elsewhere).
        if (this.state !== 'waiting') this.endRemote();
        if (this.localPublisher()) return;
        this.state = 'syncing';
        this.session = f.session;
        this.publisherNode = f.node;
        this.publisherInstance = f.instance;
        this.lastHeard = now;
        if (now - this.lastAsked >= ASK_INTERVAL_MS) {
          this.lastAsked = now;
          this.announce(now);
        }
        return;
      case 'end':
        if (f.session === this.session) this.endRemote();
        return;
      case 'replay':
        if (f.to !== this.self.node || f.toInstance !== this.self.instance) return;
        if (f.session === this.session && this.state !== 'syncing') return; // a second one: we have it
        if (this.state !== 'waiting' && f.session !== this.session) this.endRemote();
        // A local publisher, or the previous publishing still ending here (its backlog going
        // out): not now. The next announcement asks again.
        if (this.channel.isPublishing) return;
        this.session = f.session;
        this.publisherNode = f.node;
        this.publisherInstance = f.instance;
        this.lastHeard = now;
        this.assembler.reset();
        this.state = 'replaying';
        this.channel.startPublishing(f.key, '', REMOTE_PUBLISHER);
        this.log.info(
          { channel: this.channel.id, from: f.node },
          'stream relay: following the publisher on another node',
        );
        return;
      case 'replayed':
        if (f.to !== this.self.node || f.toInstance !== this.self.instance) return;
        if (f.session !== this.session || this.state !== 'replaying') return;
        this.state = 'live';
        this.nextSeq = f.next;
        this.announce(now);
        return;
    }
  }

  private localPublisher(): boolean {
    return this.channel.isPublishing && !this.channel.relayed;
  }

  private askPublisherNode(): void {
    if (this.pinging) return;
    this.pinging = true;
    const session = this.session;
    this.bus.request(pingSubject(subjectToken(this.publisherNode)), '', { timeoutMs: PING_TIMEOUT_MS }).then(
      () => {
        this.pinging = false;
      },
      (err: unknown) => {
        this.pinging = false;
        // Its NATS subscriptions died with its process: it is gone, whatever membership says yet.
        if (err instanceof NoRespondersError && session === this.session) this.publisherGone('no responders');
      },
    );
  }

  private publisherGone(why: string): void {
    this.log.info(
      { channel: this.channel.id, node: this.publisherNode, why },
      'stream relay: the publisher on another node is gone',
    );
    this.endRemote();
  }

  /** The followed publishing ends here as a local publisher's would: receivers closed, cache dropped. */
  private endRemote(): void {
    this.assembler.reset();
    const was = this.state;
    this.state = 'waiting';
    this.session = 0;
    this.publisherNode = '';
    this.publisherInstance = '';
    if ((was === 'replaying' || was === 'live') && this.channel.relayed) this.channel.endPublishing();
  }

  private announce(now: number): void {
    this.publishInterest(true, now);
  }

  private publishInterest(on: boolean, now: number): void {
    this.lastAnnounced = now;
    const i: Interest = {
      node: this.self.node,
      instance: this.self.instance,
      on,
      synced: this.state === 'live' ? this.session : null,
    };
    this.bus.publish(interestSubject(this.channel.id), busJson(i));
  }
}
