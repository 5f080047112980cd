import type { FastifyPluginAsync, preHandlerAsyncHookHandler } from 'fastify';
import type { Presence } from '../../core/presence.js';

export interface SignalAdminRoutesOptions {
  presence: Presence;
  adminGuard: preHandlerAsyncHookHandler;
}

/** The original's admin route: disconnect everyone (behind the server's admin guard). */
export const signalAdminRoutes: FastifyPluginAsync<SignalAdminRoutesOptions> = async (app, opts) => {
  const { presence, adminGuard } = opts;
  app.get('/v1/kick-active-users', { preHandler: adminGuard }, async (request, reply) => {
    request.log.info({ active: presence.size }, 'signal: kicking all active users');
    presence.kickAll();
    return reply.type('text/plain').send('OK');
  });
};
