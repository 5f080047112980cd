import type { FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import { HeartbeatScheduler } from '../lib/heartbeat-scheduler.js';
import type { Ports } from '../ports/ports.js';
import { surfaces } from '../api/surfaces.js';
import { adminGuard } from './admin-guard.js';
import { buildEngine } from './build-engine.js';
import { setupCluster } from './cluster-setup.js';
import { createHttpApp } from './http-app.js';
import { Listeners } from './listeners.js';
import { createLogger } from './logger.js';
import { mountFrontDoor } from './front-door.js';
import { logDomainEvents } from './domain-log.js';
import { ServerMetrics } from './metrics.js';
import { mountOpsRoutes } from './ops-routes.js';
import { mountSurfaces } from './mount-surfaces.js';
import { openPorts } from './open-ports.js';
import { overloadCheck } from './overload-check.js';
import { Readiness } from './readiness.js';
import { addRequestDeadline } from './request-deadline.js';
import { persistentSecret } from './server-secret.js';
import { drainSessions, shutdown } from './shutdown.js';
import { drainAwareAdmission, mountDrainGate } from './drain-gate.js';
import { mountIceServersRoute } from './ice-servers-route.js';
import { UpgradeShortcuts } from './upgrade-shortcuts.js';
import { setupWebSockets } from './websocket-setup.js';
import { WebSocketTracker } from './websocket-tracker.js';
import { webPages } from './web-pages.js';
import { ThrottledLog } from '../lib/throttled-log.js';

export interface ServerOverrides {
  logger?: Logger;
  ports?: Ports;
}

export interface ChorusServer {
  app: FastifyInstance;
  engine: Engine;
  config: Config;
  metrics: ServerMetrics;
  readiness: Readiness;
  tracker: WebSocketTracker;
  /** Starts the listeners; resolves when all are bound. */
  listen(): Promise<void>;
  /** Base URLs of the bound listeners (http always, https when TLS is configured, metrics with METRICS_PORT). */
  urls(): { http: string; https?: string; metrics?: string };
  /**
   * SIGTERM's first step: `/readyz` 503 at once, new sessions 503 with `Retry-After`, and
   * up to SHUTDOWN_GRACE_SECONDS for the running ones to end. Call `close()` after it.
   */
  drain(): Promise<void>;
  /** Graceful: not ready, close sockets with 1001, stop listeners, close ports. Idempotent. */
  close(): Promise<void>;
}

/** How long sockets still open when the drain's grace ends get to answer their 1001. */
const AFTER_DRAIN_CLOSE_MS = 2000;

/**
 * Builds everything from the config; nothing is global, so tests can run several. Each
 * step is a module of its own: ports, engine, listeners and the HTTP app, WebSockets,
 * ops routes, surfaces, shutdown.
 */
export async function createServer(config: Config, overrides: ServerOverrides = {}): Promise<ChorusServer> {
  const log = overrides.logger ?? createLogger(config.log);
  const metrics = new ServerMetrics();
  const readiness = new Readiness();
  const tracker = new WebSocketTracker(metrics);
  const heartbeats = new HeartbeatScheduler({ log });
  readiness.expect('listeners');
  readiness.expect('store');

  const ports = await openPorts(config, overrides.ports, log);
  const { load, overloaded } = overloadCheck(config.webrtc);
  if (load) readiness.check('admission', overloaded);
  readiness.set('store', true);
  const cluster = ports.cluster;
  if (cluster) {
    readiness.check('cluster', () =>
      cluster.connected ? undefined : `not connected to NATS (${cluster.server})`,
    );
  }
  const engine = buildEngine(config, ports, log, drainAwareAdmission(readiness, overloaded));
  logDomainEvents(engine, log);

  // Lines any client can cause (protocol errors, refused connections): throttled.
  const clientLog = new ThrottledLog(log, 10);
  const listeners = new Listeners(config, log);
  const app = createHttpApp(config, log, listeners, metrics, clientLog);
  const cookieSecret = config.signal.cookieSecret ?? (await persistentSecret(ports.store, 'cookie'));
  await app.register(fastifyCookie, { secret: cookieSecret });

  const enabled = surfaces.filter((s) => s.enabled(config));
  const payloadLimits = await setupWebSockets(app, config, enabled, clientLog, log);
  // Upgrades a surface takes itself; while draining, all go through the drain gate.
  const upgrades = new UpgradeShortcuts(app.server, () => !readiness.draining);
  // After the WebSocket plugin's own hooks, which end a refused upgrade's socket.
  mountDrainGate(app, readiness);
  addRequestDeadline(app, config.http.requestTimeoutSeconds * 1000, clientLog);
  const metricsListener = mountOpsRoutes(app, { config, readiness, metrics, engine, load, log });
  const clusterOps = setupCluster(app, {
    config,
    ports,
    metrics,
    readiness,
    tracker,
    adminGuard: adminGuard(config.admin),
    log,
  });
  mountFrontDoor(app, { config, readiness });
  mountIceServersRoute(app, config.network);
  const ctx = {
    config,
    engine,
    tracker,
    heartbeats,
    metrics,
    adminGuard: adminGuard(config.admin),
    upgrades,
    log,
  };
  await mountSurfaces(app, enabled, ctx, payloadLimits, readiness);

  let closing: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  const server: ChorusServer = {
    app,
    engine,
    config,
    metrics,
    readiness,
    tracker,
    async listen() {
      await listeners.listen(app);
      await metricsListener.listen();
      load?.restart(); // building the server is not load: measure from here
      readiness.set('listeners', true);
      const u = server.urls();
      clusterOps.announce(u.http, load);
      // The URLs a person opens, once, where `npm start` shows them.
      const base = u.https ?? u.http;
      const pages = Object.fromEntries(webPages(config).map((p) => [p.name, `${base}/${p.name}/`]));
      log.info({ http: u.http, https: u.https, frontDoor: `${base}/`, pages }, 'chorus listening');
    },
    urls() {
      const out: { http: string; https?: string; metrics?: string } = listeners.urls(app);
      const metricsUrl = metricsListener.url();
      if (metricsUrl) out.metrics = metricsUrl;
      return out;
    },
    drain() {
      const sessions = (): number => tracker.size + engine.sfu.stats().peers;
      draining ??= drainSessions(readiness, sessions, config.shutdown.graceSeconds * 1000, log);
      return draining;
    },
    close() {
      clusterOps.stop();
      closing ??= shutdown({
        readiness,
        listeners,
        tracker,
        heartbeats,
        app,
        metricsListener,
        engine,
        load,
        ports,
        // After a drain the grace is spent: what is left gets a short while for its 1001.
        graceMs: Math.min(config.shutdown.graceSeconds * 1000, draining ? AFTER_DRAIN_CLOSE_MS : Infinity),
        log,
      });
      return closing;
    },
  };
  return server;
}
