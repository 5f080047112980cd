import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { closeAnswerFor } from '../surface-error-handler.js';
import type { TicketUse } from './challenge-book.js';
import type { MediaPlan, MediaSessions } from './media-sessions.js';
import { voipErrors } from './voip-errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * A VOIP media route's plan, settled in the preHandler while a refusal can still
     * be an HTTP answer, for the wsHandler after the upgrade (request state, per request).
     */
    voipPlan: MediaPlan | null;
  }
}

/** Settles the plan of a WebSocket request before the upgrade; plain requests plan in their handler. */
export function planBeforeUpgrade(media: MediaSessions, use: TicketUse): preHandlerAsyncHookHandler {
  return async (request) => {
    if (request.ws) request.voipPlan = await media.plan(request, use);
  };
}

/** The plan its preHandler settled. */
export function upgradedPlan(request: FastifyRequest): MediaPlan {
  return request.voipPlan!;
}

/** After an upgrade a refusal can only be a close frame: 1008 with the original's text. */
export function startOrClose(socket: WebSocket, log: Logger, start: () => void): void {
  try {
    start();
  } catch (err) {
    const { code, reason } = closeAnswerFor(voipErrors, err, log);
    socket.close(code, reason);
  }
}
