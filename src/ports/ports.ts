import type { Bus } from './bus/bus.js';
import type { Membership } from './membership/membership.js';
import type { MessageSink } from './sinks/message-sink.js';
import type { Store } from './store/store.js';

/** The cluster connection as the server's readiness sees it (absent on one node). */
export interface ClusterLink {
  readonly connected: boolean;
  /** The NATS server connected to (or last connected to). */
  readonly server: string;
  close(): Promise<void>;
}

/**
 * What the engine reaches other nodes and outside systems through. Each port is an
 * interface beside its implementations; `createPorts` picks the implementations once,
 * from config, and nothing else decides which one runs.
 */
export interface Ports {
  bus: Bus;
  store: Store;
  /** Where derived media (audio bites) goes: NATS when configured, nowhere otherwise. */
  sink: MessageSink;
  /** This node's id: `CLUSTER_NODE_ID`, or generated once and kept in the data directory. */
  nodeId: string;
  /** The NATS connection the cluster's ports share; absent on one node (embedded ports). */
  cluster?: ClusterLink;
  /** The live nodes and `nodeGone` (one node: itself, never gone). */
  membership: Membership;
}

/** Closes every port; the engine has stopped using them by then. The shared connection last. */
export async function closePorts(ports: Ports): Promise<void> {
  // First: leaving deletes this node's entry, which needs the store's connection.
  await ports.membership.close();
  await ports.bus.close();
  await ports.store.close();
  await ports.sink.close();
  await ports.cluster?.close();
}
