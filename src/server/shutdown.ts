import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import type { HeartbeatScheduler } from '../lib/heartbeat-scheduler.js';
import { closePorts, type Ports } from '../ports/ports.js';
import type { EventLoopLoad } from './event-loop-load.js';
import type { Listeners } from './listeners.js';
import type { MetricsListener } from './metrics-endpoint.js';
import type { Readiness } from './readiness.js';
import type { WebSocketTracker } from './websocket-tracker.js';

export interface ShutdownParts {
  readiness: Readiness;
  listeners: Listeners;
  tracker: WebSocketTracker;
  heartbeats: HeartbeatScheduler;
  app: FastifyInstance;
  metricsListener: MetricsListener;
  engine: Engine;
  load: EventLoopLoad | undefined;
  ports: Ports;
  /** How long open WebSockets get to close after their 1001. */
  graceMs: number;
  log: Logger;
}

/**
 * The graceful stop, in order: not ready, sockets closed with 1001 (with a grace), the
 * listeners, the engine, the ports last (the store outlives whatever writes to it).
 */
export async function shutdown(parts: ShutdownParts): Promise<void> {
  const { readiness, listeners, tracker, heartbeats, app, metricsListener, engine, load, ports, log } = parts;
  readiness.drain();
  log.info({ sockets: tracker.size }, 'shutting down');
  listeners.stopWatching();
  await tracker.closeAll(1001, 'server shutting down', parts.graceMs);
  heartbeats.close();
  await listeners.closeTls();
  await app.close();
  await metricsListener.close();
  engine.close();
  load?.close();
  await closePorts(ports);
  log.info('stopped');
}
