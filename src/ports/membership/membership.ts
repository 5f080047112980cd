/**
 * The membership port: which Chorus nodes are alive right now. Surfaces and the engine
 * use it for the ownership pattern: live state (a call's timers, a socket) is held by one
 * node, records name that node, and when `nodeGone` fires for it the others clean up
 * what it held. One node: just itself, never gone. Cluster: a JetStream KV bucket of
 * heartbeats (see nats-membership.ts).
 */
export interface NodeLoad {
  /** Open WebSocket connections on the node. */
  connections: number;
  /** Share of the last few seconds its event loop was busy (0-1). */
  eventLoopUtilization: number;
}

export interface NodeInfo {
  id: string;
  /** Random per process start: a node restarted with the same id is a new instance. */
  instance: string;
  /** Where its HTTP listener answers; absent until it listens. */
  httpUrl?: string;
  /** Where its WebRTC legs take UDP (mux port); absent when no WebRTC surface runs. */
  webrtc?: { address: string; udpPort: number };
  load: NodeLoad;
  /** The Chorus release (package.json version). */
  version: string;
  /** The cluster wire protocol it speaks: nodes that differ refuse to share a cluster. */
  protocol: number;
  /** ISO time the process started. */
  startedAt: string;
}

/** What this node tells the others about itself, once it knows (after listening). */
export interface LocalDetails {
  httpUrl?: string;
  webrtc?: { address: string; udpPort: number };
  /** Asked at each heartbeat. */
  load?: () => NodeLoad;
}

export interface MembershipEvents extends Record<string, unknown> {
  /** A node (or a new instance of a known id) was seen for the first time. */
  nodeJoined: NodeInfo;
  /** A node stopped or stopped heartbeating: fired once per instance, on every other node. */
  nodeGone: NodeInfo;
}

export interface Membership {
  readonly selfId: string;
  /** The live nodes, this one included. */
  nodes(): NodeInfo[];
  isAlive(nodeId: string): boolean;
  /** Milliseconds since a live node's last heartbeat was seen here (undefined: not live). */
  heardMsAgo(nodeId: string): number | undefined;
  /** Listeners are called safely (a throw is logged); returns the unsubscribe. */
  on<K extends keyof MembershipEvents>(event: K, fn: (e: MembershipEvents[K]) => void): () => void;
  /** Fills in what the node knows only once it listens (HTTP URL) and its load. */
  describe(details: LocalDetails): void;
  /** Leaves: the others see this node gone at once. Idempotent. */
  close(): Promise<void>;
}

/**
 * Version of what nodes say to each other (bus subjects and payloads, store record
 * shapes). Raise it when a change makes old and new nodes misread each other: a node
 * whose version differs from the running cluster's refuses to start.
 */
export const WIRE_PROTOCOL = 1;

/** The subject each node answers pings on (its liveness and the bus latency metric). */
export function pingSubject(nodeToken: string): string {
  return `chorus.node.${nodeToken}.ping`;
}

/**
 * The node cannot join: another live node holds its id, or the cluster speaks another
 * wire protocol. The operator fixes it (CLUSTER_NODE_ID, or the same release on every
 * node); start-up turns it into one line and exit 2.
 */
export class MembershipRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MembershipRefusedError';
  }
}
