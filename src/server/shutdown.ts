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
 * The drain before the stop (SIGTERM): not ready at once (new sessions are refused by the
 * drain gate and the engine's admission), then up to `graceMs` for the calls already
 * running to end on their own: resolves when no WebSocket and no WebRTC peer is left, or
 * when the grace is over. Polled: it runs once per process life, off every media path.
 */
export async function drainSessions(
  readiness: Readiness,
  open: () => number,
  graceMs: number,
  log: Logger,
): Promise<void> {
  readiness.drain();
  const until = Date.now() + graceMs;
  log.info({ sessions: open(), graceMs }, 'draining: new sessions refused, running ones get the grace');
  while (open() > 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(250, Math.max(1, until - Date.now()))));
  }
  log.info(
    { sessions: open() },
    open() > 0 ? 'grace over: closing what is left' : 'drained: no session left',
  );
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
  readiness.stop();
  await app.close();
  await metricsListener.close();
  engine.close();
  load?.close();
  await closePorts(ports);
  log.info('stopped');
}
