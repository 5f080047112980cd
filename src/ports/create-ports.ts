import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Bus } from './bus/bus.js';
import { LocalBus } from './bus/local-bus.js';
import type { Store } from './store/store.js';
import { LmdbStore } from './store/lmdb-store.js';

export interface Ports {
  bus: Bus;
  store: Store;
}

/**
 * The one place where single node vs cluster is decided. Today only the embedded
 * implementations exist; the NATS bus and JetStream KV store plug in here.
 */
export function createPorts(config: Pick<Config, 'store'>, log: Logger): Ports {
  return {
    bus: new LocalBus(log.child({ port: 'bus' })),
    store: new LmdbStore(config.store.dataDir),
  };
}

export async function closePorts(ports: Ports): Promise<void> {
  await ports.bus.close();
  await ports.store.close();
}
