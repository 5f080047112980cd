import type { Logger } from 'pino';
import type { Bus, BusMessage, BusSubscription } from '../../ports/bus/bus.js';
import type { StreamChannel } from '../../media/stream/stream-channel.js';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import { busJson, readBusJson } from '../bus-json.js';
import {
  INTEREST,
  LIVE,
  REPLAY,
  chunkFrames,
  dataSubject,
  interestSubject,
  newSession,
  type ControlFrame,
} from './relay-frames.js';
import type { RelayCounters, RelaySelf } from './relay-counters.js';

/** A node that has not said it still wants the channel for this long is dropped (three missed announcements). */
export const INTEREST_EXPIRY_MS = 6500;
/** A node is sent at most one replay in this long (its announcements may cross the replay). */
const REPLAY_INTERVAL_MS = 3000;

interface Follower {
  instance: string;
  heardAt: number;
  replayedAt: number;
}

/**
 * The publisher's side of a channel published on this node: while other nodes have
 * receivers of it, every chunk goes to the bus once (NATS hands it to each interested
 * node once, however many receivers each has). A node that starts following gets this
 * node's cache first, addressed to it, so its own cache starts at the header and the
 * latest keyframe.
 */
export class ChannelOutbound {
  readonly session = newSession();
  private seq = 0;
  private readonly followers = new Map<string, Follower>();
  private readonly sub: BusSubscription;
  private readonly subject: string;
  private readonly tap = (chunk: Buffer): void => this.relay(chunk);
  private readonly sendFrame = (frame: Buffer): void => {
    this.counters.framesSent++;
    this.bus.publish(this.subject, frame);
  };
  private replaySeq = 0;
  private readonly sendReplayChunk = (chunk: Buffer): void =>
    chunkFrames(REPLAY, this.session, this.replaySeq++, chunk, this.sendFrame);

  constructor(
    private readonly bus: Bus,
    private readonly self: RelaySelf,
    private readonly channel: StreamChannel,
    private readonly key: string,
    private readonly counters: RelayCounters,
    private readonly busLog: ThrottledLog,
    private readonly log: Logger,
  ) {
    this.subject = dataSubject(channel.id);
    this.sub = bus.subscribe(interestSubject(channel.id), (m) => this.onInterest(m));
    // Nodes whose receivers wait for this channel ask for it at once.
    this.control({ t: 'start', session: this.session, ...this.identity() });
  }

  get followerCount(): number {
    return this.followers.size;
  }

  /** Every second: says the publisher is alive, forgets nodes that stopped asking. */
  tick(now: number): void {
    this.control({ t: 'alive', session: this.session, ...this.identity() });
    for (const [node, f] of this.followers) {
      if (now - f.heardAt > INTEREST_EXPIRY_MS) {
        this.followers.delete(node);
        this.log.info(
          { channel: this.channel.id, node },
          'stream relay: a node stopped asking for the channel',
        );
      }
    }
    this.updateTap();
  }

  /** The local publisher left (after its last chunk, which went out already). */
  end(): void {
    this.sub.unsubscribe();
    if (this.channel.tap === this.tap) this.channel.tap = undefined;
    this.control({ t: 'end', session: this.session });
    this.followers.clear();
  }

  /** A node gone from the cluster wants nothing any more. */
  forget(node: string): void {
    if (this.followers.delete(node)) this.updateTap();
  }

  private relay(chunk: Buffer): void {
    this.counters.chunksSent++;
    this.counters.bytesSent += chunk.length;
    chunkFrames(LIVE, this.session, this.seq++, chunk, this.sendFrame);
  }

  private onInterest(msg: BusMessage): void {
    const i = readBusJson(INTEREST, msg.data, { surface: 'stream', subject: msg.subject }, this.busLog);
    if (!i || i.node === this.self.node) return;
    if (!this.self.isMember(i.node)) {
      this.busLog.warn(
        { subject: msg.subject, node: i.node },
        'stream: interest from a node not in the cluster, ignored',
      );
      return;
    }
    if (!i.on) {
      this.forget(i.node);
      return;
    }
    const now = Date.now();
    let f = this.followers.get(i.node);
    if (!f || f.instance !== i.instance) {
      f = { instance: i.instance, heardAt: now, replayedAt: 0 };
      this.followers.set(i.node, f);
      this.log.info({ channel: this.channel.id, node: i.node }, 'stream relay: a node follows the channel');
    }
    f.heardAt = now;
    // Chunks go out from now on; the replay before them brings the node up to here.
    this.updateTap();
    if (i.synced !== this.session && now - f.replayedAt >= REPLAY_INTERVAL_MS) {
      f.replayedAt = now;
      this.replayTo(i.node, i.instance);
    }
  }

  private replayTo(node: string, instance: string): void {
    this.counters.replays++;
    this.control({ t: 'replay', session: this.session, ...this.identity(), to: node, toInstance: instance });
    this.replaySeq = 0;
    this.channel.replay(this.sendReplayChunk);
    this.control({
      t: 'replayed',
      session: this.session,
      to: node,
      toInstance: instance,
      next: this.seq >>> 0,
    });
  }

  private updateTap(): void {
    this.channel.tap = this.followers.size > 0 ? this.tap : undefined;
  }

  private identity(): { node: string; instance: string; key: string } {
    return { node: this.self.node, instance: this.self.instance, key: this.key };
  }

  private control(frame: ControlFrame): void {
    this.bus.publish(this.subject, busJson(frame));
  }
}
