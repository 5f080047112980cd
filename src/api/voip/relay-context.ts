import type { Logger } from 'pino';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import type { MixClock } from '../../media/audio/mix-clock.js';
import type { FeedCounters } from '../../media/audio/mix-feed.js';
import type { Bus } from '../../ports/bus/bus.js';
import type { NodeRef } from './voip-node.js';

/** Counters of the media relay, for /metrics and the tests (see media-relay.ts). */
export interface RelayStats {
  /** Owner side: mix bundles published, and the distinct mixes they carried. */
  bundlesSent: number;
  mixesSent: number;
  /** Relaying side: bundles received (one per tick per remote mixer this node hears). */
  bundlesReceived: number;
  mixesReceived: number;
  /** Upload frames sent to other nodes' mixers, and received from other nodes. */
  framesSent: number;
  framesReceived: number;
  /** Relay messages dropped as malformed or for nobody. */
  dropped: number;
}

/** What the owner side (MixerHost) and the relaying side (RemoteGroup) share on a node. */
export interface RelayContext {
  readonly bus: Bus;
  readonly self: NodeRef;
  readonly log: Logger;
  /** For bad bus messages. */
  readonly busLog: ThrottledLog;
  /** Jitter buffer of a relayed upload, on each side. */
  readonly inputBufferMs: number;
  /** Full-mix packets a relaying node keeps for late Ogg listeners. */
  readonly backlogPackets: number;
  /** Paces relayed uploads: one frame a tick from each upload to its owner. */
  readonly clock: MixClock;
  /** Opus pre-skip of the owners' encoders (the same codec and settings on every node). */
  readonly preSkip: number;
  readonly stats: RelayStats;
  /** The node's page and chunk counters (AudioHub's): relayed streams' feeds count there too. */
  readonly feedCounters: FeedCounters;
}
