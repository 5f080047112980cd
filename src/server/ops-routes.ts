import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import { gaugeAtScrape } from '../lib/scrape-metrics.js';
import type { EventLoopLoad } from './event-loop-load.js';
import { serveMetrics, type MetricsListener } from './metrics-endpoint.js';
import type { ServerMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';
import { registerSfuMetrics } from './sfu-metrics.js';

export interface OpsRoutesOptions {
  config: Config;
  readiness: Readiness;
  metrics: ServerMetrics;
  engine: Engine;
  load: EventLoopLoad | undefined;
  log: Logger;
}

/**
 * What operators and orchestrators ask: /healthz (the process answers), /readyz (it
 * takes work; 503 with the reasons otherwise) and /metrics, on the app or on its own
 * listener (returned, to be started and closed with the others).
 */
export function mountOpsRoutes(app: FastifyInstance, opts: OpsRoutesOptions): MetricsListener {
  const { config, readiness, metrics, engine, load, log } = opts;
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
  return serveMetrics(app, metrics.registry, config, log);
}
