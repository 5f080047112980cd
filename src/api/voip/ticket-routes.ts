import type { FastifyPluginAsync } from 'fastify';
import { form } from './form.js';
import { seedRoute } from './seed-route.js';
import type { VoipServices } from './voip-services.js';

/** `/getCallTicket` (standalone: a server ticket to sign) and `/tokenCheck` (who am I). */
export const ticketRoutes: FastifyPluginAsync<VoipServices> = async (app, { auth }) => {
  seedRoute(app, '/getCallTicket', ['GET'], async (request, reply) => {
    auth.requireKeys('tickets');
    const me = await auth.caller(request, form(request));
    return reply.type('text/plain').send(await auth.issueTicket(me));
  });

  seedRoute(app, '/tokenCheck', ['GET'], async (request, reply) => {
    const me = await auth.caller(request, form(request));
    return reply.type('text/plain').send(me.id);
  });
};
