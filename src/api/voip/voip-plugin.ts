import type { FastifyPluginAsync } from 'fastify';
import { surfaceErrorHandler } from '../surface-error-handler.js';
import { displayNameRoutes } from './display-name-routes.js';
import { eventRoutes } from './event-routes.js';
import { handshakeRoutes } from './handshake-routes.js';
import { listenRoutes } from './listen-routes.js';
import { roomRoutes } from './room-routes.js';
import { ticketRoutes } from './ticket-routes.js';
import { uploadRoutes } from './upload-routes.js';
import { addFormParsers } from './voip-form-parsers.js';
import { voipErrors } from './voip-errors.js';
import { registerVoipMetrics } from './voip-metrics.js';
import { createVoipServices, type VoipSurfaceOptions } from './voip-services.js';

export type { VoipSurfaceOptions } from './voip-services.js';

/**
 * The VOIP surface (seed 000, gostream): SSE events, the call handshake, calls and
 * rooms with raw PCM in and WAV / Ogg/Opus / raw Opus out. Errors are the original's
 * plain-text bodies. See docs/voip.md. One plugin per route group, all sharing the
 * services built here (the identity mode among them, chosen once).
 */
export const voipPlugin: FastifyPluginAsync<VoipSurfaceOptions> = async (app, opts) => {
  const voip = createVoipServices(opts);
  const { auth, calls, rooms, events } = voip;

  registerVoipMetrics(
    opts.registry,
    () => ({
      calls: calls.book.size,
      callsWithMedia: calls.activeMedia,
      rooms: rooms.size,
      eventStreams: events.streamCount,
      mixers: opts.audio.size,
      skippedTicks: opts.audio.skippedTicks,
      opusEncodes: opts.audio.counters.encodes,
      oggPages: opts.audio.counters.oggPages,
      oggPageCopies: opts.audio.counters.oggPageCopies,
      roomNoticeMessages: events.liveMessages,
      remoteMixers: voip.relay.remoteCount,
      listenerReleases: voip.media.departures.stats.released,
      largestReleaseSlice: voip.media.departures.stats.largestSlice,
    }),
    voip.relay.stats,
  );

  // Before the server waits for its connections to end: event and audio streams never
  // end by themselves.
  app.addHook('preClose', async () => {
    clearInterval(voip.sweeper);
    await calls.close();
    await rooms.closeAll();
    // Listener slots still queued to be freed (media-sessions.ts), the side site told.
    voip.media.departures.drain();
    voip.notices.close();
    voip.relay.close();
    // The parties of the calls ended here are told on their nodes before the bus closes.
    await events.flushed();
    events.close();
  });

  // CORS on every answer, hijacked streams included (hence on the raw response).
  app.addHook('onRequest', async (_request, reply) => {
    for (const [name, value] of auth.corsHeaders) reply.raw.setHeader(name, value);
  });

  app.setErrorHandler(surfaceErrorHandler(voipErrors));
  addFormParsers(app);
  // The media routes' plans, from their preHandler to their wsHandler.
  app.decorateRequest('voipPlan', null);

  await app.register(eventRoutes, voip);
  await app.register(ticketRoutes, voip);
  await app.register(handshakeRoutes, voip);
  await app.register(uploadRoutes, voip);
  await app.register(listenRoutes, voip);
  await app.register(roomRoutes, voip);
  await app.register(displayNameRoutes, { auth, store: opts.ports.store });

  opts.log.info({ mode: auth.mode }, 'voip surface ready');
};
