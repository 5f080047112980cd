import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import type { Bus } from '../../ports/bus/bus.js';
import type { Membership } from '../../ports/membership/membership.js';
import type { Store } from '../../ports/store/store.js';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';
import type { SocketTracker } from '../surface-context.js';
import { StreamCluster } from './stream-cluster.js';
import { streamCoordinator } from './stream-coordinator.js';
import { StreamGate } from './stream-gate.js';
import { streamHttpRoutes } from './stream-http-routes.js';
import { StreamMetrics } from './stream-metrics.js';
import { StreamRelay } from './stream-relay.js';
import type { StreamLiveness } from './stream-session.js';
import { streamSocketRoutes } from './stream-socket-routes.js';

export interface StreamSurfaceOptions {
  config: Config['stream'];
  network: Config['network'];
  streams: StreamRegistry;
  /** Channel claims and the cluster-wide stats go through these. */
  bus: Bus;
  store: Store;
  membership: Membership;
  tracker: SocketTracker;
  /** The server's heartbeat wheel: the text heartbeat and the idle timeout. */
  heartbeats: HeartbeatScheduler;
  registry: Registry;
  log: Logger;
}

/**
 * The ws-stream-server surface (seed 002): `/{channel}/{key}/{kind}` WebSockets with the
 * original's plain-text refusals before the upgrade, the coordinator link, limits.
 * Across nodes: one publisher per channel (`PublisherClaims`), its chunks relayed once to
 * each node with receivers (`StreamRelay`), stats summed over the nodes, and each node
 * its own link to the coordinator (as several original servers
 * were: the coordinator sends encoders to the node that publishes, by its external
 * address). Per-IP limits count each node's own connections.
 */
export const streamPlugin: FastifyPluginAsync<StreamSurfaceOptions> = async (app, opts) => {
  const { config, network, streams, tracker, log } = opts;
  const coordinator = streamCoordinator(config, network, streams, log);
  coordinator?.start();
  if (!coordinator) log.info('stream: standalone mode, any publishing key is accepted');
  app.addHook('onClose', async () => {
    await coordinator?.close();
  });

  const cluster = new StreamCluster(opts.bus, opts.store, opts.membership, streams, log);
  cluster.start();
  app.addHook('onClose', async () => cluster.close());

  const relay = new StreamRelay(opts.bus, opts.membership, streams, config.maxMessageBytes, log);
  app.addHook('onClose', async () => relay.close());

  const metrics = new StreamMetrics(opts.registry, streams, relay, () => coordinator?.connected);
  const gate = new StreamGate({ config, streams, coordinator, claims: cluster.claims, relay, metrics, log });
  const liveness: StreamLiveness = {
    heartbeats: opts.heartbeats,
    heartbeatMs: config.heartbeatSeconds * 1000,
    idleMs: config.idleTimeoutSeconds * 1000,
  };

  await app.register(streamSocketRoutes, { config, gate, coordinator, liveness, relay, tracker, log });
  await app.register(streamHttpRoutes, { config, cluster });
};
