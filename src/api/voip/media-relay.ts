import type { Logger } from 'pino';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import { createOpusEncoder, type OpusSettings } from '../../media/audio/audio-codec.js';
import { MixClock } from '../../media/audio/mix-clock.js';
import type { FeedCounters } from '../../media/audio/mix-feed.js';
import type { Bus } from '../../ports/bus/bus.js';
import type { MediaGroup } from './media-group.js';
import { MixerHost } from './mixer-host.js';
import type { RelayContext, RelayStats } from './relay-context.js';
import { RemoteGroup } from './remote-group.js';
import { sameNode } from './room-records.js';
import type { MixKey } from './relay-wire.js';
import type { NodeRef, VoipNode } from './voip-node.js';

export interface MediaRelayOptions {
  bus: Bus;
  node: VoipNode;
  log: Logger;
  busLog: ThrottledLog;
  inputBufferMs: number;
  backlogPackets: number;
  opus: OpusSettings;
  feedCounters: FeedCounters;
}

/**
 * Media of calls and rooms across nodes. Each call or room is mixed on one node, its
 * owner (the node that placed the call; for a room, the node whose compare-and-set
 * claim on its record won). The owner `host`s its mixer on the bus (MixerHost); any
 * other node with a member streaming reaches it through a `remote` group (RemoteGroup):
 * uploads go to the owner frame by frame, and the mixes its listeners need come back
 * once a tick per node, encoded once on the owner. On one node nothing is remote and
 * none of this is used beyond the `host` subscriptions.
 */
export class MediaRelay {
  readonly stats: RelayStats = {
    bundlesSent: 0,
    mixesSent: 0,
    bundlesReceived: 0,
    mixesReceived: 0,
    framesSent: 0,
    framesReceived: 0,
    dropped: 0,
  };
  private readonly ctx: RelayContext;
  private readonly hosts = new Set<MixerHost>();
  private readonly remotes = new Map<string, RemoteGroup>();

  constructor(opts: MediaRelayOptions) {
    const clock = new MixClock((err) => opts.log.error({ err }, 'voip relay: upload tick failed'));
    // Read from an encoder when a relayed stream first needs it: making one at start loads
    // the Opus binding on an idle server (audio-codec.ts).
    let preSkip: number | undefined;
    this.ctx = {
      bus: opts.bus,
      self: opts.node.self,
      log: opts.log,
      busLog: opts.busLog,
      inputBufferMs: opts.inputBufferMs,
      backlogPackets: opts.backlogPackets,
      clock,
      get preSkip() {
        return (preSkip ??= createOpusEncoder(opts.opus).preSkip);
      },
      stats: this.stats,
      feedCounters: opts.feedCounters,
    };
    opts.node.onNodeGone((node) => this.nodeGone(node));
  }

  /** Serves the mixer of a call or room owned here to the other nodes, until it closes. */
  host(key: MixKey, group: MediaGroup): void {
    const host = new MixerHost(key, group, this.ctx);
    this.hosts.add(host);
    group.room.events.on('close', () => this.hosts.delete(host));
  }

  /** The call or room `owner` mixes, for streams on this node. */
  remote(key: MixKey, owner: NodeRef): RemoteGroup {
    const k = `${key.kind}\u0000${key.id}\u0000${owner.instance}`;
    const found = this.remotes.get(k);
    if (found && !found.closed) return found;
    const group = new RemoteGroup(key, owner, this.ctx, (g) => {
      if (this.remotes.get(k) === g) this.remotes.delete(k);
    });
    this.remotes.set(k, group);
    return group;
  }

  /** Remote mixers with streams on this node. */
  get remoteCount(): number {
    return this.remotes.size;
  }

  close(): void {
    for (const g of [...this.remotes.values()]) g.close('shutdown');
    this.ctx.clock.stop();
  }

  private nodeGone(node: NodeRef): void {
    for (const h of this.hosts) {
      try {
        h.nodeGone(node);
      } catch (err) {
        this.ctx.log.warn({ err, node: node.id }, 'voip relay: slots of a gone node not freed');
      }
    }
    for (const g of [...this.remotes.values()]) if (sameNode(g.owner, node)) g.close('its node is gone');
  }
}
