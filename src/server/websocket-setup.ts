import type { FastifyInstance } from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Surface } from '../api/surfaces.js';
import type { ThrottledLog } from '../lib/throttled-log.js';
import { websocketErrorHandler } from './websocket-error-handler.js';
import { WebSocketPayloadLimits } from './websocket-payload-limits.js';

/**
 * One WebSocket upgrade server for every surface, its ceiling the largest message any
 * enabled surface accepts; each surface's own limit is set per upgrade through the
 * returned limits (#11.5).
 */
export async function setupWebSockets(
  app: FastifyInstance,
  config: Config,
  enabled: readonly Surface[],
  clientLog: ThrottledLog,
  log: Logger,
): Promise<WebSocketPayloadLimits> {
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
  return payloadLimits;
}
