import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { errorBody } from '../api/error-table.js';
import { IpMatcher } from '../lib/ip-matcher.js';
import { listenOrExplain } from './startup-error.js';

/** The `/metrics` listener when it has its own port; a no-op when it shares the HTTP one. */
export interface MetricsListener {
  listen(): Promise<void>;
  /** `http://host:port` of the metrics listener, when it has its own. */
  url(): string | undefined;
  close(): Promise<void>;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
const LOOPBACK = new IpMatcher(['127.0.0.0/8', '::1']);

function isLoopback(host: string): boolean {
  return host === 'localhost' || LOOPBACK.matches(host);
}

function addMetricsRoute(app: FastifyInstance, registry: Registry, token: string | undefined): void {
  const expected = token === undefined ? undefined : digest(token);
  app.get('/metrics', async (request, reply) => {
    if (expected) {
      const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
      // Digests of equal length, so the comparison time says nothing about the token.
      if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected)) {
        request.log.warn({ route: '/metrics' }, 'metrics refused: bad or missing bearer token');
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="chorus-metrics"')
          .send(
            errorBody(
              'unauthenticated',
              'metrics credential required: Authorization: Bearer <METRICS_TOKEN>',
            ),
          );
      }
    }
    const names = selected(request.query);
    if (names) return reply.type(registry.contentType).send(await someMetrics(registry, names));
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}

/** `?name=a&name=b`: the metric names asked for, at most 32; undefined for all of them. */
function selected(query: unknown): string[] | undefined {
  const raw = (query as { name?: unknown } | undefined)?.name;
  if (raw === undefined) return undefined;
  const names = (Array.isArray(raw) ? raw : [raw]).filter((n): n is string => typeof n === 'string');
  return names.slice(0, 32);
}

/**
 * Only the named metrics (unknown names are left out), in the order asked. With thousands
 * of sockets open, serialising the whole registry (process handles by type, open file
 * descriptors, every histogram) is itself a turn of 8-29 ms (#17.3); a poller that reads a
 * few values (bench:voip) need not cost the server that. The event-loop delay gauges are
 * set (and the histogram reset) by `nodejs_eventloop_lag_seconds`'s collect: ask for it
 * first.
 */
async function someMetrics(registry: Registry, names: string[]): Promise<string> {
  const parts: string[] = [];
  for (const name of names) {
    if (registry.getSingleMetric(name)) parts.push(await registry.getSingleMetricAsString(name));
  }
  return parts.length > 0 ? `${parts.join('\n\n')}\n` : '';
}

const noListener: MetricsListener = {
  listen: () => Promise.resolve(),
  url: () => undefined,
  close: () => Promise.resolve(),
};

/**
 * Serves `/metrics` as configured: on the main app (the default, as before), or on its
 * own listener (`METRICS_PORT`, `METRICS_BIND_ADDRESS`) so it can stay on loopback while
 * the main port is public; behind a bearer token when `METRICS_TOKEN` is set. Says so
 * once when metrics are open to anyone on a non-loopback address.
 */
export function serveMetrics(
  app: FastifyInstance,
  registry: Registry,
  config: Pick<Config, 'metrics' | 'http'>,
  log: Logger,
): MetricsListener {
  const { enabled, token, port } = config.metrics;
  if (!enabled) return noListener;
  const host =
    port === undefined ? config.http.bindAddress : (config.metrics.bindAddress ?? config.http.bindAddress);
  if (token === undefined && !isLoopback(host)) {
    log.warn(
      { address: host, port: port ?? config.http.port },
      'metrics are public: /metrics answers anyone on a non-loopback address (set METRICS_TOKEN, or METRICS_PORT with METRICS_BIND_ADDRESS=127.0.0.1)',
    );
  }
  if (port === undefined) {
    addMetricsRoute(app, registry, token);
    return noListener;
  }

  const own = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- Fastify's logger type, as in createServer
    loggerInstance: log.child({ listener: 'metrics' }) as FastifyBaseLogger,
    // A scrape every few seconds is not worth a log line each.
    logController: new LogController({ disableRequestLogging: true }),
  });
  addMetricsRoute(own, registry, token);
  own.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
  const url = (): string | undefined => {
    const a = own.server.address() as AddressInfo | null;
    if (!a) return undefined;
    const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${shown === '0.0.0.0' ? '127.0.0.1' : shown === '[::]' ? '[::1]' : shown}:${a.port}`;
  };
  return {
    async listen() {
      await listenOrExplain('metrics', host, port, 'METRICS_PORT or METRICS_BIND_ADDRESS', () =>
        own.listen({ port, host }),
      );
      log.info({ metrics: url() }, 'metrics listening');
    },
    url,
    async close() {
      await own.close();
    },
  };
}
