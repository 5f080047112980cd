import type { FastifyPluginAsync } from 'fastify';
import type { WebSocket } from 'ws';
import type { TicketUse } from './challenge-book.js';
import { planBeforeUpgrade, startOrClose, upgradedPlan } from './socket-plan.js';
import { uploadFromRequest, uploadFromWebSocket } from './upload-session.js';
import type { VoipServices } from './voip-services.js';

const UPLOADS = [
  ['/upCall', 'upCall'],
  ['/upRoom', 'upRoom'],
] as const satisfies readonly (readonly [string, TicketUse])[];

/**
 * `/upCall` and `/upRoom`: raw PCM into a call's or room's mixer, over a WebSocket
 * (GET) or as a streamed request body (POST, PUT).
 */
export const uploadRoutes: FastifyPluginAsync<VoipServices> = async (app, voip) => {
  const { config, media, tracker, log } = voip;

  // The raw body is the audio, so the POST routes take any content type unparsed, in
  // their own context.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, _payload, done) => done(null));
    for (const [url, use] of UPLOADS) {
      // PUT as well: `curl -T -` streams stdin with PUT.
      raw.route({
        method: ['POST', 'PUT'],
        url,
        // A live body: no whole-request deadline, closed when idle instead.
        config: { bodyIdleTimeoutMs: config.uploadIdleSeconds * 1000 },
        handler: async (request, reply) => {
          const p = await media.plan(request, use);
          const complete = await new Promise<boolean>((resolve) =>
            media.startUpload(p, (input, done) =>
              uploadFromRequest(request.raw, input, (whole) => {
                done();
                resolve(whole);
              }),
            ),
          );
          // A body cut short (client gone, call ended) has nobody left to answer.
          return complete ? reply.type('text/plain').send('') : reply;
        },
      });
    }
  });

  for (const [url, use] of UPLOADS) {
    app.route({
      method: 'GET',
      url,
      preHandler: planBeforeUpgrade(media, use),
      handler: async (_request, reply) =>
        reply.code(426).type('text/plain').send('WebSocket or POST expected\n'),
      wsHandler: (socket: WebSocket, request) => {
        tracker.track('voip', socket);
        startOrClose(socket, log, () =>
          media.startUpload(upgradedPlan(request), (input, done) =>
            uploadFromWebSocket(socket, input, config.maxUploadFrameBytes, done),
          ),
        );
      },
    });
    app.route({ method: ['OPTIONS', 'DELETE', 'PATCH'], url, handler: async (_r, reply) => reply.send('') });
  }
};
