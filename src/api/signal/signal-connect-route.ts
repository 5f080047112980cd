import type { FastifyPluginAsync } from 'fastify';
import type { UserId } from '../../core/ids.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { releaseUpgradeRequest } from '../release-upgrade-request.js';
import { SignalConnection, type SignalConnectionContext } from './signal-connection.js';
import type { SignalSurfaceOptions } from './signal-plugin.js';
import { signedInUser } from './signal-session.js';
import { CloseCode } from './signal-wire.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Signal's `/v1/connect`: the session's user, settled before the upgrade (null: none). */
    signalUser: UserId | null;
  }
}

/** What `/v1/connect` needs: the surface's options less the admin guard. */
export type SignalConnectRouteOptions = Omit<SignalSurfaceOptions, 'adminGuard'>;

/** `/v1/connect`: the WebSocket of a registered user (the session cookie says who). */
export const signalConnectRoute: FastifyPluginAsync<SignalConnectRouteOptions> = async (app, opts) => {
  const { config, identities, presence, quotas, tracker, heartbeats, log } = opts;
  // Last-used stamps written as sockets close; the store must outlive them.
  const marking = new Set<Promise<unknown>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...marking]);
  });
  app.decorateRequest('signalUser', null);
  const connections: SignalConnectionContext = {
    presence,
    config,
    heartbeats,
    log,
    clientErrors: new ThrottledLog(log),
    closed: (user, conn) => {
      // The name was in use until now: a long connection must not leave an old stamp.
      const marked = identities
        .get(user)
        .then((record) => (record ? identities.touch(user, record, quotas.touchEveryMs) : undefined))
        .catch((err: unknown) => log.warn({ err, user, conn }, 'signal: could not mark the name used'))
        .finally(() => marking.delete(marked));
      marking.add(marked);
    },
  };

  // Who connects is settled before the upgrade, so the socket handler is synchronous and
  // no early message can arrive before the user is attached.
  app.get(
    '/v1/connect',
    {
      websocket: true,
      preHandler: async (request) => {
        request.signalUser = (await signedInUser(request, identities, quotas.touchEveryMs)) ?? null;
      },
    },
    (socket, request) => {
      const user = request.signalUser;
      if (!user) {
        tracker.track('signal', socket);
        log.warn({ ip: request.ip }, 'signal connect refused: no registered identity');
        socket.close(CloseCode.unauthenticated.code, CloseCode.unauthenticated.reason);
        return;
      }
      // First, while @fastify/websocket's 'error' listener is the socket's only one: taking
      // the only listener away gives the socket a fresh listener table, where deleting
      // one of several turns the table into a dictionary, 256 bytes more per idle
      // connection (heap snapshot, #17.1).
      // (The socket emits 'error' from a later turn, once `connection` below exists.)
      releaseUpgradeRequest(request, socket, (err) => connection.onSocketError(err));
      tracker.track('signal', socket);
      const conn = request.id;
      // Only the three strings are kept, not the request (the ip asks the kernel).
      if (log.isLevelEnabled('info')) log.info({ user, conn, ip: request.ip }, 'signal connection open');
      // Lives as long as its socket, whose listeners hold it.
      const connection = new SignalConnection(socket, request.raw.socket, user, conn, connections);
    },
  );
};
