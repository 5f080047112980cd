/** This node as the relay names it in frames and announcements, and who else may speak. */
export interface RelaySelf {
  node: string;
  /** Random per process start: a restarted node is a new follower. */
  instance: string;
  /**
   * Whether a node is a live member of the cluster: announcements and frames naming any
   * other node are not acted on (a replay costs the cache's size; a start ends a stream).
   */
  isMember(node: string): boolean;
}

/**
 * The relay's counts, plain numbers bumped on the chunk path and read when Prometheus
 * scrapes (no metric call per chunk).
 */
export class RelayCounters {
  /** Chunks this node put on the bus as the publisher's node (once each, however many nodes follow). */
  chunksSent = 0;
  bytesSent = 0;
  /** Bus messages of chunk data sent (a chunk over the fragment size is several). */
  framesSent = 0;
  /** Chunks this node took from the bus for its own receivers (live ones; replays apart). */
  chunksReceived = 0;
  bytesReceived = 0;
  /** Replays of the cache sent to nodes that started following. */
  replays = 0;
  /** Live chunks that never arrived (a sequence number skipped: NATS dropped them). */
  gaps = 0;
  /** Relay messages dropped as malformed or of a session this node does not follow. */
  dropped = 0;
}
