import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ChorusError } from '../core/errors.js';
import type { Readiness } from './readiness.js';

/** What a refused client is told to wait before it tries again (a load balancer has moved it on by then). */
export const DRAIN_RETRY_AFTER_SECONDS = 5;

/** The refusal of new work while this node drains, in each surface's error format (503, `Retry-After`). */
export function drainingError(): ChorusError {
  return new ChorusError('unavailable', 'server shutting down: try again (another node) shortly', {
    retryAfterSeconds: DRAIN_RETRY_AFTER_SECONDS,
  });
}

/**
 * Plain requests that open a call, a join or a room (matched on the route's path, whatever
 * the surface's prefix): VOIP's `/newCall` and its streamed `/joinCall`, `/joinRoom`,
 * `/upCall`, `/upRoom`; Blue Sky's room creation and join.
 */
const SESSION_ROUTES: ReadonlyArray<{ method?: string; suffix: string }> = [
  { suffix: '/newCall' },
  { suffix: '/joinCall' },
  { suffix: '/joinRoom' },
  { suffix: '/upCall' },
  { suffix: '/upRoom' },
  { method: 'PUT', suffix: '/webrtc/room' },
  { method: 'POST', suffix: '/webrtc/room/:meetingId/join' },
];

/**
 * Requests that start something: a WebSocket (Signal connect, Stream, Beep, VOIP audio),
 * an event stream (SSE), a new call, join or room. Other requests still pass, so the calls
 * already running can finish (a Blue Sky SDP answer, a hang-up); new WebRTC legs are
 * refused by the engine's admission too (see `drainAwareAdmission`).
 */
function startsSession(request: FastifyRequest): boolean {
  const h = request.headers;
  if (typeof h.upgrade === 'string' && h.upgrade.toLowerCase() === 'websocket') return true;
  if (typeof h.accept === 'string' && h.accept.includes('text/event-stream')) return true;
  const route = request.routeOptions.url;
  if (route === undefined) return false;
  return SESSION_ROUTES.some(
    (r) => route.endsWith(r.suffix) && (r.method === undefined || r.method === request.method),
  );
}

/**
 * While draining (SIGTERM), new sessions get 503 with `Retry-After` instead of a refused
 * connection: the listener stays open for the grace so running calls keep their HTTP
 * routes, and `/readyz` already answers 503 so load balancers stop sending new ones.
 * Registered on the root app before the surfaces, so every route sees it, and after the
 * WebSocket plugin, whose onRequest marks an upgrade so its socket is ended after the 503.
 *
 * Once the HTTP server itself closes (`Readiness.stop`), every request gets the 503 here.
 * Fastify's own `return503OnClosing` is off because it answers before any hook: an
 * upgrade refused that way never reaches the WebSocket plugin's onResponse, which is what
 * ends its socket, and that socket alone kept the server's close waiting for ever.
 */
export function mountDrainGate(app: FastifyInstance, readiness: Readiness): void {
  app.addHook('onRequest', async (request) => {
    if (readiness.draining && (readiness.stopping || startsSession(request))) throw drainingError();
  });
}

/** The engine's admission of new WebRTC legs, also closed while draining. */
export function drainAwareAdmission(
  readiness: Readiness,
  overloaded: () => string | undefined,
): () => string | undefined {
  return () => (readiness.draining ? 'server shutting down' : overloaded());
}
