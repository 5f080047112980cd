import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { LocalBus } from './bus/local-bus.js';
import { LmdbStore } from './store/lmdb-store.js';
import { NatsSink } from './sinks/nats-sink.js';
import { NoSink } from './sinks/no-sink.js';
import type { Ports } from './ports.js';

/**
 * The one place where single node vs cluster is decided, from top-level config sections
 * only (never a surface's slice). Today the bus and the store are always the embedded
 * ones; the NATS bus and JetStream KV store plug in here, chosen by `cluster.natsUrl`.
 * The sink publishes to `sinks.natsUrl`, which defaults to the cluster's NATS when
 * loading the config.
 */
export function createPorts(config: Pick<Config, 'store' | 'sinks'>, log: Logger): Ports {
  const sinkServers = config.sinks.natsUrl;
  return {
    bus: new LocalBus(log.child({ port: 'bus' })),
    store: new LmdbStore(config.store.dataDir),
    sink: sinkServers ? new NatsSink([...sinkServers], log.child({ port: 'sink' })) : new NoSink(),
  };
}
