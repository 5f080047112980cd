import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { chorusErrors, errorBody } from '../api/error-table.js';
import { surfaceErrorHandler } from '../api/surface-error-handler.js';
import type { ThrottledLog } from '../lib/throttled-log.js';
import type { Listeners } from './listeners.js';
import { lazySchemaCompilers } from './lazy-schema-compilers.js';
import type { ServerMetrics } from './metrics.js';

/**
 * The Fastify app behind the listeners, with what every route shares: limits, the
 * per-request metrics and log line, the JSON error handler and 404.
 */
export function createHttpApp(
  config: Config,
  log: Logger,
  listeners: Listeners,
  metrics: ServerMetrics,
  clientLog: ThrottledLog,
): FastifyInstance {
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- types the app with Fastify's logger so plugin types line up
    loggerInstance: log as FastifyBaseLogger,
    // One log line per request, written by our onResponse hook, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy.length > 0 ? config.http.trustProxy : false,
    // The drain gate answers 503 while the server closes, through the hooks (see there).
    return503OnClosing: false,
    // Stream channel and key may be up to ID_MAX_LENGTH (1024) characters.
    routerOptions: { maxParamLength: 2048 },
    // One handler behind both listeners: TLS requests and upgrades reach the same routes.
    serverFactory: listeners.serverFactory,
    // No route declares a JSON schema (zod validates): ajv and fast-json-stringify load on first use.
    schemaController: { compilersFactory: lazySchemaCompilers() },
  });
  listeners.capConnections(app, clientLog);

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    if (config.log.requests) {
      // A person reads the domain events at info; answers that went well are detail.
      const level = reply.statusCode >= 400 ? 'info' : 'debug';
      request.log[level](
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
  return app;
}
