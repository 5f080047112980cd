import type { Bus } from './bus/bus.js';
import type { MessageSink } from './sinks/message-sink.js';
import type { Store } from './store/store.js';

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
}

/** Closes every port; the engine has stopped using them by then. */
export async function closePorts(ports: Ports): Promise<void> {
  await ports.bus.close();
  await ports.store.close();
  await ports.sink.close();
}
