import type { FastifyPluginAsync } from 'fastify';
import { form } from './form.js';
import { seedRoute } from './seed-route.js';
import type { VoipServices } from './voip-services.js';

/**
 * `/messages`: the caller's Server-Sent Events stream. The first event is the server's
 * public key; events missed since `Last-Event-ID` are replayed (Chorus) to the stream's
 * owner.
 */
export const eventRoutes: FastifyPluginAsync<VoipServices> = async (app, voip) => {
  const { auth, events, serverKey, log } = voip;
  seedRoute(app, '/messages', ['GET'], async (request, reply) => {
    const f = form(request);
    const me = await auth.caller(request, { ...f, token: f.CSRFtoken ?? f.token });
    const last = Number(request.headers['last-event-id'] ?? f.lastEventId);
    // Standalone, anyone who knows a key can open its stream (as in the original), so
    // missed events go only to its proven owner. Others get live events, and a stale
    // signature is not refused: EventSource would stop reconnecting altogether on a
    // non-200 answer.
    const owner = await auth.ownsStream(me, f);
    if (!owner && Number.isSafeInteger(last))
      log.debug({ user: me.id }, 'voip replay withheld: key not proven');
    reply.hijack();
    reply.raw.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    events.open(
      me.id,
      reply.raw,
      `event: pubkey\ndata:${serverKey}\n\n`,
      owner && Number.isSafeInteger(last) ? last : undefined,
    );
    log.debug({ user: me.id }, 'voip event stream open');
  });
};
