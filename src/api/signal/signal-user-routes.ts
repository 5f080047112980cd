import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/schema.js';
import type { IdentityRecord, IdentityRegistry } from '../../core/identity-registry.js';
import { asUserId, type UserId } from '../../core/ids.js';
import type { QuotaRefusal, SignalQuotas } from './signal-quotas.js';
import { sessionCookieValue, sessionOf, signedInUser } from './signal-session.js';
import { COOKIE_MAX_AGE_SECONDS, COOKIE_NAME, registerReply, usernameProblem } from './signal-wire.js';

export interface SignalUserRoutesOptions {
  config: Config['signal'];
  identities: IdentityRegistry;
  quotas: SignalQuotas;
}

function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  user: UserId,
  record: IdentityRecord,
): void {
  reply.setCookie(COOKIE_NAME, sessionCookieValue(request, user, record), {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: request.protocol === 'https',
    maxAge: COOKIE_MAX_AGE_SECONDS,
  });
}

function clearSession(reply: FastifyReply): void {
  reply.header('clear-site-data', '"cookies"');
  reply.clearCookie(COOKIE_NAME, { path: '/' });
}

function refuse(request: FastifyRequest, reply: FastifyReply, refusal: QuotaRefusal): FastifyReply {
  request.log.warn({ ip: request.ip }, `signal register refused: ${refusal.message}`);
  return reply
    .code(429)
    .header('retry-after', String(refusal.retryAfterSeconds))
    .send(registerReply('RATE_LIMITED', refusal.message));
}

/** Health, registration of a name (with its session cookie) and the session check. */
export const signalUserRoutes: FastifyPluginAsync<SignalUserRoutesOptions> = async (app, opts) => {
  const { config, identities, quotas } = opts;

  app.get('/healthcheck', async (_request, reply) => reply.type('text/plain').send('success'));

  app.post('/v1/register', async (request, reply) => {
    const overRate = quotas.admitRequest(request.ip);
    if (overRate) return refuse(request, reply, overRate);
    const body = request.body as { username?: unknown } | undefined;
    if (body === null || typeof body !== 'object') {
      return reply.code(400).send(registerReply('INVALID', 'invalid body'));
    }
    const problem = usernameProblem(body.username, config.usernameMaxLength);
    if (problem) return reply.code(400).send(registerReply('INVALID', problem));
    const user = asUserId(body.username as string);
    // Out of new names for today: only a name that exists can still be answered (TAKEN,
    // or SUCCESS to its holder).
    const overDaily = quotas.newNameRefusal(request.ip);
    if (overDaily && !(await identities.exists(user))) return refuse(request, reply, overDaily);
    if (await identities.register(user)) {
      quotas.registered(request.ip);
      request.log.info({ user }, 'signal user registered');
      const record = await identities.get(user);
      if (record) setSessionCookie(request, reply, user, record);
      return reply.send(registerReply('SUCCESS'));
    }
    // Registering again with your own session is not a conflict (a person re-submitting).
    const session = await sessionOf(request, identities);
    if (session?.user === user) {
      setSessionCookie(request, reply, user, session.record);
      return reply.send(registerReply('SUCCESS'));
    }
    return reply.code(409).send(registerReply('TAKEN'));
  });

  app.get('/v1/user', async (request, reply) => {
    if (await signedInUser(request, identities, quotas.touchEveryMs))
      return reply.type('text/plain').send('OK');
    clearSession(reply);
    return reply.code(404).type('text/plain').send('Not Found');
  });
};
