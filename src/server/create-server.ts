import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyWebsocket from '@fastify/websocket';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { Engine } from '../engine/engine.js';
import { HeartbeatScheduler } from '../lib/heartbeat-scheduler.js';
import { announcedAddress } from '../media/webrtc/peer-config.js';
import { assertUdpPortFree } from '../media/webrtc/udp-port-check.js';
import { createPorts } from '../ports/create-ports.js';
import { closePorts, type Ports } from '../ports/ports.js';
import { surfaces } from '../api/surfaces.js';
import { adminGuard } from './admin-guard.js';
import { chorusErrors, errorBody } from '../api/error-table.js';
import { surfaceErrorHandler } from '../api/surface-error-handler.js';
import { createLogger } from './logger.js';
import { ServerMetrics } from './metrics.js';
import { registerSfuMetrics } from './sfu-metrics.js';
import { EventLoopLoad } from './event-loop-load.js';
import { gaugeAtScrape } from '../lib/scrape-metrics.js';
import { Readiness } from './readiness.js';
import { persistentSecret } from './server-secret.js';
import { readTlsFiles, watchTlsFiles } from './tls-credentials.js';
import { listenOrExplain, reasonOf, StartupError } from './startup-error.js';
import { serveMetrics } from './metrics-endpoint.js';
import { mountWeb } from './web-assets.js';
import { WebSocketTracker } from './websocket-tracker.js';
import { ThrottledLog } from '../lib/throttled-log.js';
import { websocketErrorHandler } from './websocket-error-handler.js';
import { capConnectionsPerIp } from './connection-cap.js';
import { addRequestDeadline } from './request-deadline.js';
import { WebSocketPayloadLimits } from './websocket-payload-limits.js';

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
  /** Graceful: not ready, close sockets with 1001, stop listeners, close ports. Idempotent. */
  close(): Promise<void>;
}

function urlOf(server: HttpServer | HttpsServer, scheme: string): string {
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${a.port}`;
}

/** Builds everything from the config; nothing is global, so tests can run several. */
export async function createServer(config: Config, overrides: ServerOverrides = {}): Promise<ChorusServer> {
  const log = overrides.logger ?? createLogger(config.log);
  const metrics = new ServerMetrics();
  const readiness = new Readiness();
  const tracker = new WebSocketTracker(metrics);
  const heartbeats = new HeartbeatScheduler({ log });
  readiness.expect('listeners');
  readiness.expect('store');

  if ((config.bluesky.enabled || config.beep.enabled) && !config.webrtc.portRange) {
    try {
      await assertUdpPortFree(config.webrtc.udpPort, config.webrtc.bindAddress);
    } catch (err) {
      throw new StartupError(reasonOf(err), { cause: err });
    }
  }
  let ports: Ports;
  try {
    ports = overrides.ports ?? createPorts(config, log);
  } catch (err) {
    // Opening the data directory is what fails here (DATA_DIR unusable).
    throw new StartupError(`${reasonOf(err)}; set DATA_DIR`, { cause: err });
  }
  const busyLimit = config.webrtc.overloadBusyPercent / 100;
  const load = busyLimit > 0 ? new EventLoopLoad() : undefined;
  // One answer for the SFU's admission and for /readyz, so that they never disagree.
  const overloaded = (): string | undefined => {
    const busy = load?.utilization ?? 0;
    return busy > busyLimit
      ? `server overloaded: its event loop is ${Math.round(busy * 100)} % busy (limit ${config.webrtc.overloadBusyPercent} %)`
      : undefined;
  };
  if (load) readiness.check('admission', overloaded);
  readiness.set('store', true);
  const engine = new Engine(ports, log, {
    stream: {
      cacheBytes: config.stream.gopCacheSizeMb * 1024 * 1024,
      policy: {
        receiverQueueBytes: config.stream.receiverQueueBytes,
        slowReceiver: config.stream.slowReceiver,
      },
    },
    webrtc: {
      udpPort: config.webrtc.udpPort,
      portRange: config.webrtc.portRange,
      bindAddress: config.webrtc.bindAddress,
      announcedAddress: announcedAddress(config.network.externalIp, config.webrtc.bindAddress, log),
      nackHistoryPackets: config.webrtc.nackHistoryPackets,
      keyframeIntervalMs: config.webrtc.keyframeIntervalMs,
      peerTimeoutMs: config.webrtc.peerTimeoutSeconds * 1000,
      maxPeers: config.webrtc.maxPeers,
      admission: overloaded,
    },
    audio: {
      opus: { bitrate: config.voip.opusBitrate, complexity: config.voip.opusComplexity },
      backlogMs: config.voip.oggBacklogMs,
    },
  });

  let tlsServer: HttpsServer | undefined;
  let stopTlsWatch = (): void => undefined;
  const tlsFiles =
    config.tls.cert && config.tls.key ? { cert: config.tls.cert, key: config.tls.key } : undefined;

  // Lines any client can cause (protocol errors, refused connections): throttled.
  const clientLog = new ThrottledLog(log, 10);
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- types the app with Fastify's logger so plugin types line up
    loggerInstance: log as FastifyBaseLogger,
    // One log line per request, written by our onResponse hook, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy.length > 0 ? config.http.trustProxy : false,
    return503OnClosing: true,
    // Stream channel and key may be up to ID_MAX_LENGTH (1024) characters.
    routerOptions: { maxParamLength: 2048 },
    // One handler behind both listeners: TLS requests and upgrades reach the same routes.
    serverFactory: (handler) => {
      // No whole-request deadline in Node (one value for every route, and audio uploads
      // are bodies that last as long as a call): request-deadline.ts sets one per route.
      // Headers still have Node's timeout.
      const http = createHttpServer({ requestTimeout: 0 }, handler);
      if (tlsFiles) {
        // The files were checked with the config; this catches them changing since.
        try {
          tlsServer = createHttpsServer({ ...readTlsFiles(tlsFiles), requestTimeout: 0 }, handler);
        } catch (err) {
          throw new StartupError(`TLS: cannot use SSL_CERT and SSL_KEY: ${reasonOf(err)}`, { cause: err });
        }
        tlsServer.on('upgrade', (req, socket, head) => http.emit('upgrade', req, socket, head));
        stopTlsWatch = watchTlsFiles(tlsServer, tlsFiles, config.tls.reloadSeconds, log);
      }
      return http;
    },
  });
  if (config.http.maxConnectionsPerIp > 0) {
    capConnectionsPerIp(
      tlsServer ? [app.server, tlsServer] : [app.server],
      config.http.maxConnectionsPerIp,
      config.http.trustProxy,
      clientLog,
    );
  }

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    if (config.log.requests) {
      request.log.info(
        {
          method: request.method,
          url: request.url,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime),
        },
        'request',
      );
    }
  });

  // Chorus's own routes and the Stream surface (whose seed has no error body of its own).
  app.setErrorHandler(surfaceErrorHandler(chorusErrors));
  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  const cookieSecret = config.signal.cookieSecret ?? (await persistentSecret(ports.store, 'cookie'));
  await app.register(fastifyCookie, { secret: cookieSecret });

  const enabled = surfaces.filter((s) => s.enabled(config));
  const maxPayload = Math.max(1024, ...enabled.map((s) => s.maxWebSocketMessage(config)));
  await app.register(fastifyWebsocket, {
    options: { maxPayload },
    // Shutdown closes sockets itself (1001, with a grace), before Fastify's close.
    preClose: (done) => done(),
    errorHandler: websocketErrorHandler(clientLog, log),
  });
  // Each surface's own message limit, refused by ws from the frame header (#11.5).
  const payloadLimits = new WebSocketPayloadLimits();
  payloadLimits.install(app.websocketServer);
  addRequestDeadline(app, config.http.requestTimeoutSeconds * 1000, clientLog);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const snap = readiness.snapshot();
    return reply.code(snap.ready ? 200 : 503).send(snap);
  });
  registerSfuMetrics(metrics.registry, () => engine.sfu.stats());
  if (load) {
    gaugeAtScrape(
      metrics.registry,
      'chorus_event_loop_utilization',
      'Share of the last 3 s the event loop was busy (0-1); new WebRTC legs are refused above WEBRTC_OVERLOAD_BUSY_PERCENT.',
      () => load.utilization,
    );
  }
  const metricsListener = serveMetrics(app, metrics.registry, config, log);

  const guard = adminGuard(config.admin);
  for (const surface of enabled) {
    readiness.expect(surface.name);
    // A scope per surface, only so its WebSocket upgrades carry its own message limit.
    const wsLimit = surface.maxWebSocketMessage(config);
    await app.register(async (scope) => {
      scope.addHook('onRequest', (request, _reply, done) => {
        if (request.ws) payloadLimits.set(request.raw, wsLimit);
        done();
      });
      await surface.mount(scope, { config, engine, tracker, heartbeats, metrics, adminGuard: guard, log });
    });
    readiness.set(surface.name, true);
    log.info({ surface: surface.name }, 'surface mounted');
  }
  if (config.web.enabled) {
    const disabled = [
      ...(config.signal.enabled ? [] : ['signal']),
      ...(config.bluesky.enabled ? [] : ['meet']),
      ...(config.voip.enabled ? [] : ['call']),
      ...(config.stream.enabled && !config.stream.disableTestClient ? [] : ['stream']),
    ];
    await mountWeb(app, log, disabled);
  }

  let closing: Promise<void> | undefined;

  const server: ChorusServer = {
    app,
    engine,
    config,
    metrics,
    readiness,
    tracker,
    async listen() {
      const host = config.http.bindAddress;
      await listenOrExplain('HTTP', host, config.http.port, 'HTTP_PORT or BIND_ADDRESS', () =>
        app.listen({ port: config.http.port, host }),
      );
      if (tlsServer) {
        const tls = tlsServer;
        await listenOrExplain(
          'HTTPS',
          host,
          config.tls.port,
          'SSL_PORT or BIND_ADDRESS',
          () =>
            new Promise<void>((resolve, reject) => {
              tls.once('error', reject);
              tls.listen(config.tls.port, host, () => {
                tls.off('error', reject);
                resolve();
              });
            }),
        );
      }
      await metricsListener.listen();
      load?.restart(); // building the server is not load: measure from here
      readiness.set('listeners', true);
      const u = server.urls();
      log.info({ http: u.http, https: u.https }, 'chorus listening');
    },
    urls() {
      const out: { http: string; https?: string; metrics?: string } = { http: urlOf(app.server, 'http') };
      if (tlsServer?.listening) out.https = urlOf(tlsServer, 'https');
      const metricsUrl = metricsListener.url();
      if (metricsUrl) out.metrics = metricsUrl;
      return out;
    },
    close() {
      closing ??= (async () => {
        readiness.drain();
        log.info({ sockets: tracker.size }, 'shutting down');
        stopTlsWatch();
        await tracker.closeAll(1001, 'server shutting down', config.shutdown.graceSeconds * 1000);
        heartbeats.close();
        if (tlsServer?.listening) {
          const tls = tlsServer;
          await new Promise<void>((resolve) => {
            tls.close(() => resolve());
            tls.closeAllConnections();
          });
        }
        await app.close();
        await metricsListener.close();
        engine.close();
        load?.close();
        await closePorts(ports);
        log.info('stopped');
      })();
      return closing;
    },
  };
  return server;
}
