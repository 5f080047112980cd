import type { Logger } from 'pino';
import type { Bus } from '../../ports/bus/bus.js';
import type { Membership, NodeInfo } from '../../ports/membership/membership.js';
import type { StreamChannel } from '../../media/stream/stream-channel.js';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { RelayCounters, type RelaySelf } from './relay-counters.js';
import { ChannelInbound } from './relay-inbound.js';
import { ChannelOutbound } from './relay-outbound.js';

const TICK_MS = 1000;

/**
 * Stream media across nodes. A channel's publisher is on one node (its claim says which);
 * receivers may be on any. The publisher's node relays each chunk once on the channel's
 * bus subject while some other node has receivers (ChannelOutbound); each node with
 * receivers follows that subject and feeds its own StreamChannel (ChannelInbound), so
 * fan-out, the cache for late joiners and slow-receiver handling stay per node. One node:
 * nobody else ever asks, and nothing goes on the bus but a few announcements.
 *
 * The socket routes tell it when a local publisher starts and ends and when a channel's
 * receivers change; it decides from the channel's state which side, if any, to run.
 */
export class StreamRelay {
  readonly counters = new RelayCounters();
  private readonly outbound = new Map<string, ChannelOutbound>();
  private readonly inbound = new Map<string, ChannelInbound>();
  private readonly timer: NodeJS.Timeout;
  private readonly offGone: () => void;
  private readonly busLog: ThrottledLog;
  private readonly self: RelaySelf;

  constructor(
    private readonly bus: Bus,
    membership: Membership,
    /** The node's channels: a follower is for the channel the registry holds under its id. */
    private readonly streams: StreamRegistry,
    private readonly maxChunkBytes: number,
    private readonly log: Logger,
  ) {
    this.busLog = new ThrottledLog(log);
    this.self = {
      node: membership.selfId,
      instance: membership.nodes().find((n) => n.id === membership.selfId)?.instance ?? '',
      isMember: (node) => membership.isAlive(node),
    };
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.offGone = membership.on('nodeGone', (n) => this.nodeGone(n));
  }

  /** Nodes following channels published here, summed over the channels (for the metrics). */
  get followers(): number {
    let n = 0;
    for (const o of this.outbound.values()) n += o.followerCount;
    return n;
  }

  /** Channels this node follows from another node. */
  get following(): number {
    return this.inbound.size;
  }

  /** A publisher here started: other nodes' receivers of the channel get its chunks through this node. */
  localPublisherStarted(channel: StreamChannel, key: string): void {
    this.stopFollowing(channel.id);
    this.outbound.get(channel.id)?.end();
    this.outbound.set(
      channel.id,
      new ChannelOutbound(this.bus, this.self, channel, key, this.counters, this.busLog, this.log),
    );
  }

  localPublisherEnded(channel: StreamChannel): void {
    this.outbound.get(channel.id)?.end();
    this.outbound.delete(channel.id);
    // Receivers still waiting here may be served by a publisher on another node next.
    this.receiversChanged(channel);
  }

  /** A receiver came or went: follow the channel from another node while any are here. */
  receiversChanged(channel: StreamChannel): void {
    let following = this.inbound.get(channel.id);
    if (this.streams.find(channel.id) !== channel) {
      // A channel the registry has forgotten (its relayed publishing ended while its
      // receivers were still closing): only its own follower, if any, is stale now.
      if (following?.channel === channel) this.stopFollowing(channel.id);
      return;
    }
    if (following && following.channel !== channel) {
      this.stopFollowing(channel.id);
      following = undefined;
    }
    const publishedHere = this.outbound.has(channel.id) || (channel.isPublishing && !channel.relayed);
    const wanted = channel.receiverCount > 0 && !publishedHere;
    if (wanted && !following) {
      this.inbound.set(
        channel.id,
        new ChannelInbound(
          this.bus,
          this.self,
          channel,
          this.maxChunkBytes,
          this.counters,
          this.busLog,
          this.log,
        ),
      );
    } else if (!wanted && following) {
      this.stopFollowing(channel.id);
    }
  }

  /** A publisher arriving here won the channel's claim: the remote publishing it replaces is over here. */
  dropRemote(channel: StreamChannel): void {
    this.inbound.get(channel.id)?.dropRemote();
  }

  close(): void {
    clearInterval(this.timer);
    this.offGone();
    for (const o of this.outbound.values()) o.end();
    this.outbound.clear();
    for (const i of this.inbound.values()) i.close();
    this.inbound.clear();
  }

  private stopFollowing(id: string): void {
    this.inbound.get(id)?.close();
    this.inbound.delete(id);
  }

  private tick(): void {
    const now = Date.now();
    for (const o of this.outbound.values()) this.guard(() => o.tick(now));
    for (const i of this.inbound.values()) this.guard(() => i.tick(now));
  }

  private nodeGone(n: NodeInfo): void {
    for (const o of this.outbound.values()) o.forget(n.id);
    for (const i of this.inbound.values()) i.nodeGone(n.id, n.instance);
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'stream relay: a periodic step threw');
    }
  }
}
