import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { FRAME_MS } from '../../media/audio/pcm-frame.js';
import type { TicketUse } from './challenge-book.js';
import { startAudioResponse, streamToResponse, streamToWebSocket } from './listen-session.js';
import { planBeforeUpgrade, startOrClose, upgradedPlan } from './socket-plan.js';
import type { VoipServices } from './voip-services.js';

const LISTENS = [
  ['/joinCall', 'joinCall'],
  ['/joinRoom', 'joinRoom'],
] as const satisfies readonly (readonly [string, TicketUse])[];

/**
 * `/joinCall` and `/joinRoom`: a call's or room's mix, over a WebSocket (raw Opus
 * packets) or as a streamed response (WAV or Ogg/Opus) to GET or POST.
 */
export const listenRoutes: FastifyPluginAsync<VoipServices> = async (app, voip) => {
  const { config, media, tracker, log } = voip;
  const flushTicks = Math.max(1, Math.round(config.httpFlushMs / FRAME_MS));

  for (const [url, use] of LISTENS) {
    const serve = async (request: FastifyRequest, reply: FastifyReply) => {
      const p = await media.plan(request, use);
      media.startListen(p, (done) => {
        reply.hijack();
        startAudioResponse(reply.raw, p.format);
        return streamToResponse(reply.raw, p.format, p.group.mixer, p.me.id, flushTicks, done);
      });
    };
    app.route({ method: 'POST', url, handler: serve });
    app.route({
      method: 'GET',
      url,
      preHandler: planBeforeUpgrade(media, use),
      handler: serve,
      wsHandler: (socket: WebSocket, request) => {
        tracker.track('voip', socket);
        const p = upgradedPlan(request);
        startOrClose(socket, log, () =>
          media.startListen(p, (done) => streamToWebSocket(socket, p.group.mixer, p.me.id, done)),
        );
      },
    });
    app.route({
      method: ['OPTIONS', 'PUT', 'DELETE', 'PATCH'],
      url,
      handler: async (_r, reply) => reply.send(''),
    });
  }
};
