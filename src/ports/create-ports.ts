import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Bus } from './bus/bus.js';
import { LocalBus } from './bus/local-bus.js';
import type { Store } from './store/store.js';
import { LmdbStore } from './store/lmdb-store.js';
import { NoSink, type MessageSink } from './sinks/message-sink.js';
import { NatsSink } from './sinks/nats-sink.js';

export interface Ports {
  bus: Bus;
  store: Store;
  /** Where audio bites go: NATS when `NATS` is set, nowhere otherwise. */
  sink: MessageSink;
}

/**
 * The one place where single node vs cluster is decided. Today only the embedded
 * implementations exist; the NATS bus and JetStream KV store plug in here.
 */
export function createPorts(config: Pick<Config, 'store' | 'beep'>, log: Logger): Ports {
  const nats = config.beep.nats;
  return {
    bus: new LocalBus(log.child({ port: 'bus' })),
    store: new LmdbStore(config.store.dataDir),
    sink: nats
      ? new NatsSink(
          nats.split(',').map((s) => s.trim()),
          log.child({ port: 'sink' }),
        )
      : new NoSink(),
  };
}

export async function closePorts(ports: Ports): Promise<void> {
  await ports.bus.close();
  await ports.store.close();
  await ports.sink.close();
}
