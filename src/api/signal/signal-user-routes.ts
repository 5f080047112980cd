import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/schema.js';
import type { IdentityRecord, IdentityRegistry } from '../../core/identity-registry.js';
import { asUserId, type UserId } from '../../core/ids.js';
import type { QuotaRefusal, SignalQuotas } from './signal-quotas.js';
import { SESSION_COOKIE, USERNAME_COOKIE, sessionCookieValue, sessionOf } from './signal-session.js';
import { COOKIE_MAX_AGE_SECONDS, registerReply, usernameProblem } from './signal-wire.js';

export interface SignalUserRoutesOptions {
  config: Config['signal'];
  identities: IdentityRegistry;
  quotas: SignalQuotas;
}

/**
 * The signed HttpOnly session, and the bare name where the seed's web app reads it
 * (`document.cookie`), with the same lifetime.
 */
function setSessionCookies(
  request: FastifyRequest,
  reply: FastifyReply,
  user: UserId,
  record: IdentityRecord,
): void {
  const common = {
    path: '/',
    sameSite: 'lax',
    secure: request.protocol === 'https',
    maxAge: COOKIE_MAX_AGE_SECONDS,
  } as const;
  reply.setCookie(SESSION_COOKIE, sessionCookieValue(request, user, record), { ...common, httpOnly: true });
  reply.setCookie(USERNAME_COOKIE, user, { ...common, httpOnly: false });
}

function clearSession(reply: FastifyReply): void {
  // Clear-Site-Data only acts in secure contexts (HTTPS, localhost): the cookies are
  // also expired one by one.
  reply.header('clear-site-data', '"cookies"');
  reply.clearCookie(SESSION_COOKIE, { path: '/' });
  reply.clearCookie(USERNAME_COOKIE, { path: '/' });
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
      if (record) setSessionCookies(request, reply, user, record);
      return reply.send(registerReply('SUCCESS'));
    }
    // Registering again with your own session is not a conflict (a person re-submitting).
    const session = await sessionOf(request, identities);
    if (session?.user === user) {
      setSessionCookies(request, reply, user, session.record);
      return reply.send(registerReply('SUCCESS'));
    }
    // 200, as the original: the seed's web app reads the body's status only on a 200.
    return reply.send(registerReply('TAKEN'));
  });

  app.get('/v1/user', async (request, reply) => {
    const session = await sessionOf(request, identities);
    if (!session) {
      clearSession(reply);
      // 401, as the original's code: its web app sends the user to registration on it.
      return reply.code(401).type('text/plain').send('Unauthorized');
    }
    await identities.touch(session.user, session.record, quotas.touchEveryMs);
    // A session from before the cookie was split, or a name cookie the app lost: both
    // cookies again, so the app can read the name.
    if (session.legacy || request.cookies[USERNAME_COOKIE] !== session.user) {
      setSessionCookies(request, reply, session.user, session.record);
    }
    return reply.type('text/plain').send('OK');
  });
};
