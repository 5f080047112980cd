import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { LocalBus } from './bus/local-bus.js';
import type { NatsBus } from './bus/nats-bus.js';
import { LocalMembership } from './membership/local-membership.js';
import type { Membership } from './membership/membership.js';
import type { NatsLink } from './nats/nats-link.js';
import { PortStartError } from './port-errors.js';
import { nodeIdFor } from './node-id.js';
import { LmdbStore } from './store/lmdb-store.js';
import { NoSink } from './sinks/no-sink.js';
import type { Ports } from './ports.js';

/** Bound of every store call in cluster mode: past it, PortUnavailableError (503). */
const STORE_TIMEOUT_MS = 5000;

/**
 * The one place where single node vs cluster is decided, from top-level config sections
 * only (never a surface's slice). No `cluster.natsUrl`: the in-process bus and LMDB, no
 * NATS needed. With it: one NatsLink (the process's one connection, waited for at
 * start-up), the NATS bus and the JetStream KV store on it. The sink publishes to
 * `sinks.natsUrl` (the cluster's NATS unless set), on the cluster's connection when that
 * names the same servers. The NATS modules (and the NATS client) are imported only on
 * the branch that needs them: a single node without a sink never loads them.
 */
export async function createPorts(
  config: Pick<Config, 'store' | 'sinks' | 'cluster'>,
  log: Logger,
): Promise<Ports> {
  const clusterServers = config.cluster.natsUrl;
  if (!clusterServers) {
    const store = new LmdbStore(config.store.dataDir);
    const bus = new LocalBus(log.child({ port: 'bus' }));
    const nodeId = nodeIdFor(config.cluster.nodeId, config.store.dataDir);
    return {
      bus,
      store,
      sink: await sinkFor(config, log, undefined),
      nodeId,
      membership: new LocalMembership(nodeId, bus, log.child({ port: 'membership' })),
    };
  }
  const nodeId = nodeIdFor(config.cluster.nodeId, config.store.dataDir);
  const [{ NatsLink }, { NatsBus }, { KvStore }] = await Promise.all([
    import('./nats/nats-link.js'),
    import('./bus/nats-bus.js'),
    import('./store/kv-store.js'),
  ]);
  const link = await NatsLink.open({
    servers: clusterServers,
    nodeId,
    connectTimeoutMs: config.cluster.connectTimeoutSeconds * 1000,
    log: log.child({ port: 'nats' }),
  });
  const bus = new NatsBus(link, log.child({ port: 'bus' }));
  const membership = await joinCluster(config.cluster, link, bus, nodeId, log);
  return {
    bus,
    store: new KvStore(link, { replicas: config.cluster.kvReplicas, timeoutMs: STORE_TIMEOUT_MS }),
    sink: await sinkFor(config, log, link),
    nodeId,
    cluster: link,
    membership,
  };
}

/**
 * Announces this node (NatsMembership.join): a refusal (its id held by a live node, another
 * wire protocol) or a failure closes the connection and stops the start with one line.
 */
async function joinCluster(
  cluster: Config['cluster'],
  link: NatsLink,
  bus: NatsBus,
  nodeId: string,
  log: Logger,
): Promise<Membership> {
  const [{ NatsMembership }, { natsReason }] = await Promise.all([
    import('./membership/nats-membership.js'),
    import('./nats/nats-errors.js'),
  ]);
  try {
    return await NatsMembership.join({
      nc: link.nc,
      bus,
      nodeId,
      log: log.child({ port: 'membership' }),
      replicas: cluster.kvReplicas,
      ...(cluster.wireProtocol === undefined ? {} : { protocol: cluster.wireProtocol }),
    });
  } catch (err) {
    await bus.close();
    await link.close();
    if (err instanceof PortStartError) throw err;
    throw new PortStartError(`cannot join the cluster: ${natsReason(err)}`, { cause: err });
  }
}

async function sinkFor(
  config: Pick<Config, 'sinks' | 'cluster'>,
  log: Logger,
  link: NatsLink | undefined,
): Promise<Ports['sink']> {
  const servers = config.sinks.natsUrl;
  if (!servers) return new NoSink();
  const { NatsSink } = await import('./sinks/nats-sink.js');
  const shared = link && servers.join(',') === config.cluster.natsUrl?.join(',');
  return new NatsSink([...servers], log.child({ port: 'sink' }), shared ? link : undefined);
}
