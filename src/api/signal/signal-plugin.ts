import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { asUserId, type UserId } from '../../core/ids.js';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import type { IdentityRecord, IdentityRegistry } from '../../core/identity-registry.js';
import type { Presence } from '../../core/presence.js';
import type { SocketTracker } from '../surface-context.js';
import { surfaceErrorHandler } from '../surface-error-handler.js';
import { SignalConnection } from './signal-connection.js';
import { signalErrors } from './signal-errors.js';
import { sessionCookieValue, sessionOf } from './signal-session.js';
import type { QuotaRefusal, SignalQuotas } from './signal-quotas.js';
import {
  COOKIE_MAX_AGE_SECONDS,
  COOKIE_NAME,
  CloseCode,
  registerReply,
  usernameProblem,
} from './signal-wire.js';

export interface SignalSurfaceOptions {
  config: Config['signal'];
  identities: IdentityRegistry;
  presence: Presence;
  /** Shared by every prefix of the surface, so a second prefix is no second allowance. */
  quotas: SignalQuotas;
  tracker: SocketTracker;
  /** The server's heartbeat wheel: pings each connection, terminates the silent. */
  heartbeats: HeartbeatScheduler;
  adminGuard: preHandlerAsyncHookHandler;
  log: Logger;
}

/**
 * The Signal Server surface (seed 001). Thin: parses, validates, calls Presence and the
 * IdentityRegistry, formats the original's bodies.
 */
export const signalPlugin: FastifyPluginAsync<SignalSurfaceOptions> = async (app, opts) => {
  const { config, identities, presence, quotas, tracker, heartbeats, log } = opts;
  // Last-used stamps written as sockets close; the store must outlive them.
  const marking = new Set<Promise<unknown>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...marking]);
  });

  // The original answers every unreadable body with this exact 400.
  app.setErrorHandler(surfaceErrorHandler(signalErrors));

  /** The registered user of a valid session cookie, marked used now. */
  const sessionUser = async (request: FastifyRequest): Promise<UserId | undefined> => {
    const session = await sessionOf(request, identities);
    if (!session) return undefined;
    await identities.touch(session.user, session.record, quotas.touchEveryMs);
    return session.user;
  };

  const setSessionCookie = (
    request: FastifyRequest,
    reply: FastifyReply,
    user: UserId,
    record: IdentityRecord,
  ): void => {
    reply.setCookie(COOKIE_NAME, sessionCookieValue(request, user, record), {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: request.protocol === 'https',
      maxAge: COOKIE_MAX_AGE_SECONDS,
    });
  };

  const clearSession = (reply: FastifyReply): void => {
    reply.header('clear-site-data', '"cookies"');
    reply.clearCookie(COOKIE_NAME, { path: '/' });
  };

  app.get('/healthcheck', async (_request, reply) => reply.type('text/plain').send('success'));

  const refuse = (request: FastifyRequest, reply: FastifyReply, refusal: QuotaRefusal) => {
    request.log.warn({ ip: request.ip }, `signal register refused: ${refusal.message}`);
    return reply
      .code(429)
      .header('retry-after', String(refusal.retryAfterSeconds))
      .send(registerReply('RATE_LIMITED', refusal.message));
  };

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
    if (await sessionUser(request)) return reply.type('text/plain').send('OK');
    clearSession(reply);
    return reply.code(404).type('text/plain').send('Not Found');
  });

  app.get('/v1/kick-active-users', { preHandler: opts.adminGuard }, async (request, reply) => {
    request.log.info({ active: presence.size }, 'signal: kicking all active users');
    presence.kickAll();
    return reply.type('text/plain').send('OK');
  });

  // Who connects is settled before the upgrade, so the socket handler is synchronous and
  // no early message can arrive before the user is attached.
  app.get(
    '/v1/connect',
    {
      websocket: true,
      preHandler: async (request) => {
        (request as FastifyRequest & { signalUser?: UserId | undefined }).signalUser =
          await sessionUser(request);
      },
    },
    (socket, request) => {
      tracker.track('signal', socket);
      const user = (request as FastifyRequest & { signalUser?: UserId }).signalUser;
      if (!user) {
        log.warn({ ip: request.ip }, 'signal connect refused: no registered identity');
        socket.close(CloseCode.unauthenticated.code, CloseCode.unauthenticated.reason);
        return;
      }
      const connLog = log.child({ user, conn: request.id });
      // Lives as long as its socket, whose listeners hold it.
      new SignalConnection(socket, user, presence, config, connLog, heartbeats);
      socket.once('close', () => {
        // The name was in use until now: a long connection must not leave an old stamp.
        const marked = identities
          .get(user)
          .then((record) => (record ? identities.touch(user, record, quotas.touchEveryMs) : undefined))
          .catch((err: unknown) => connLog.warn({ err }, 'signal: could not mark the name used'))
          .finally(() => marking.delete(marked));
        marking.add(marked);
      });
      connLog.info({ ip: request.ip }, 'signal connection open');
    },
  );
};
