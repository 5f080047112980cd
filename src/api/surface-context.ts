import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { preHandlerAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { WebSocket } from 'ws';
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import type { HeartbeatScheduler } from '../lib/heartbeat-scheduler.js';

/*
 * What the server hands to the surfaces, declared here on the api side so that api/ never
 * imports server/ (server/ sits above api/ and implements these). Each interface is as
 * small as the surfaces' use of it.
 */

/** Counts a surface's open WebSockets and closes them all on shutdown. */
export interface SocketTracker {
  track(surface: string, socket: WebSocket): void;
}

/** The server's metrics: surfaces register their own collectors on its registry. */
export interface SurfaceMetrics {
  readonly registry: Registry;
}

/**
 * Takes one WebSocket upgrade before Fastify's request lifecycle. `fullPath` hands it to
 * Fastify instead (the route's own hooks and error answers); call it at most once, and
 * only if the socket was not touched.
 */
export type UpgradeShortcut = (
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  fullPath: () => void,
) => void;

/** Where a surface registers the upgrades it takes itself (an exact path, GET). */
export interface UpgradeShortcutRegistry {
  add(path: string, shortcut: UpgradeShortcut): void;
}

export interface SurfaceContext {
  config: Config;
  engine: Engine;
  tracker: SocketTracker;
  /** Heartbeats and idle timeouts of long-lived connections, on one wheel. */
  heartbeats: HeartbeatScheduler;
  metrics: SurfaceMetrics;
  /** Guards admin routes (ADMIN_TOKEN bearer or ADMIN_OPEN); the server builds it from config. */
  adminGuard: preHandlerAsyncHookHandler;
  /** Upgrades taken before Fastify's lifecycle (Signal's `/v1/connect`, #17.1). */
  upgrades: UpgradeShortcutRegistry;
  log: Logger;
}
