import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bus, BusMessage, BusSubscription } from '../../ports/bus/bus.js';
import type { Membership, NodeInfo } from '../../ports/membership/membership.js';
import type { Store } from '../../ports/store/store.js';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { askEveryNode, nodeSubject } from '../ask-every-node.js';
import { busJson, readBusJson } from '../bus-json.js';
import { CHANNEL_STATS, localChannelStats, sumChannelStats, type ChannelStats } from './channel-stats.js';
import { PublisherClaims, type PublisherClaim } from './publisher-claims.js';

/** How long the stats route waits for each node. */
const STATS_TIMEOUT_MS = 3000;
const STATS_QUESTION = z.object({ channel: z.string().min(1).max(1024) });

/** The cluster view of a channel: the sum, and how many nodes it adds up. */
export interface ClusterChannelStats extends ChannelStats {
  /** Nodes whose counters are in the sum. */
  nodes: number;
  /** Nodes that did not answer in time (their counters are missing from the sum). */
  missingNodes: number;
}

/**
 * Stream across nodes. The publisher of a channel may be on any node; `PublisherClaims`
 * keeps one per channel cluster-wide, with its key. The stats route adds up every node's
 * counters (each answers `chorus.node.<id>.stream.stats`), so any node a load balancer
 * picks gives the same numbers. The media crosses nodes through `StreamRelay`.
 */
export class StreamCluster {
  readonly claims: PublisherClaims;
  private readonly sub: BusSubscription;
  private readonly offGone: () => void;
  private readonly busLog: ThrottledLog;

  constructor(
    private readonly bus: Bus,
    store: Store,
    private readonly membership: Membership,
    private readonly streams: StreamRegistry,
    private readonly log: Logger,
  ) {
    this.claims = new PublisherClaims(store, membership, bus);
    this.busLog = new ThrottledLog(log);
    this.sub = bus.subscribe(nodeSubject(membership.selfId, 'stream.stats'), (m) => this.onStats(m));
    this.offGone = membership.on('nodeGone', (info) => this.nodeGone(info));
  }

  /** Clears, in the background, the claims of an earlier run of this node (it crashed). */
  start(): void {
    const { selfId, instance } = this.claims;
    this.sweep((c) => c.node === selfId && c.instance !== instance, 'an earlier run of this node');
  }

  async stats(channel: string): Promise<ClusterChannelStats> {
    const nodes = this.membership.nodes().map((n) => n.id);
    const { answers, missing } = await askEveryNode(
      this.bus,
      nodes,
      'stream.stats',
      { channel },
      CHANNEL_STATS,
      { timeoutMs: STATS_TIMEOUT_MS, surface: 'stream', log: this.busLog },
    );
    return { ...sumChannelStats(answers.values()), nodes: answers.size, missingNodes: missing.length };
  }

  close(): void {
    this.sub.unsubscribe();
    this.offGone();
    this.claims.close();
  }

  private onStats(msg: BusMessage): void {
    const q = readBusJson(STATS_QUESTION, msg.data, { surface: 'stream', subject: msg.subject }, this.busLog);
    if (!q) return;
    msg.respond?.(busJson(localChannelStats(this.streams, q.channel)));
  }

  private nodeGone(info: NodeInfo): void {
    this.sweep((c) => c.node === info.id && c.instance === info.instance, `node ${info.id}`);
  }

  private sweep(gone: (c: PublisherClaim) => boolean, whose: string): void {
    this.claims.sweep(gone).then(
      (n) => {
        if (n > 0)
          this.log.info(
            { channels: n, whose },
            'stream: freed the channels of a publisher node that has gone',
          );
      },
      (err: unknown) =>
        this.log.warn({ err, whose }, 'stream: could not free the channels of a node that has gone'),
    );
  }
}
