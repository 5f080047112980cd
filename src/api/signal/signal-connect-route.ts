import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import type { UserId } from '../../core/ids.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { releaseUpgradeRequest } from '../release-upgrade-request.js';
import { DirectTextFrameReader } from './direct-text-frames.js';
import { SignalConnection, type SignalConnectionContext } from './signal-connection.js';
import { TurnFlush } from './turn-flush.js';
import { UpgradeBatch } from './upgrade-batch.js';
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

/** Until ws owns an upgrading socket (Node took its own listener off): a reset just ends it. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * `/v1/connect`: the WebSocket of a registered user (the session cookie says who).
 *
 * Taken on the HTTP server's 'upgrade' (an upgrade shortcut), not through Fastify's
 * request lifecycle: the cookie is parsed and checked, then ws's `handleUpgrade`, with no
 * request, reply, hooks or ServerResponse in between (a third of an accept's CPU,
 * #17.1); the upgrades of one poll phase are answered together (UpgradeBatch). The
 * Fastify route below stays for what the shortcut hands back (the store out of reach:
 * the surface's error answer) and what it never takes (a draining server: the drain
 * gate's 503; another method; a path only the router matches), so every error keeps its
 * status and body.
 */
export const signalConnectRoute: FastifyPluginAsync<SignalConnectRouteOptions> = async (app, opts) => {
  const { config, identities, presence, quotas, tracker, heartbeats, log } = opts;
  // Last-used stamps written as sockets close; the store must outlive them.
  const marking = new Set<Promise<unknown>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...marking]);
  });
  app.decorateRequest('signalUser', null);
  const clientErrors = new ThrottledLog(log);
  const direct = config.fastReceive ? new DirectTextFrameReader(log) : undefined;
  const connections: SignalConnectionContext = {
    presence,
    config,
    heartbeats,
    log,
    clientErrors,
    closed: (user, conn) => {
      // The name was in use until now: a long connection must not leave an old stamp.
      const marked = identities
        .get(user)
        .then((record) => (record ? identities.touch(user, record, quotas.touchEveryMs) : undefined))
        .catch((err: unknown) => log.warn({ err, user, conn }, 'signal: could not mark the name used'))
        .finally(() => marking.delete(marked));
      marking.add(marked);
    },
    turn: new TurnFlush(log),
  };

  /** A refused socket's errors (the client's protocol errors or its leaving): ws ends it. */
  const refusedSocketError = (err: Error): void => {
    const code = (err as NodeJS.ErrnoException).code;
    clientErrors.debug({ code, reason: err.message }, 'signal: refused socket failed');
  };
  /**
   * An upgraded socket, whose 'error' listener (set first) calls what this returns:
   * closed with 4000 without a user, a SignalConnection with one. `ip` is the request's
   * (full path); absent, the TCP peer's address, read only for a log line that is
   * written (a getpeername system call: 3 % of an accept's busy samples, #17.1).
   */
  const opened = (
    socket: WebSocket,
    tcp: Socket,
    user: UserId | null,
    conn: string,
    ip?: string,
  ): ((err: Error) => void) => {
    tracker.track('signal', socket);
    if (!user) {
      log.warn({ ip: ip ?? tcp.remoteAddress }, 'signal connect refused: no registered identity');
      socket.close(CloseCode.unauthenticated.code, CloseCode.unauthenticated.reason);
      return refusedSocketError;
    }
    // Only the three strings are kept, not the request.
    if (log.isLevelEnabled('info'))
      log.info({ user, conn, ip: ip ?? tcp.remoteAddress }, 'signal connection open');
    // Lives as long as its socket, whose listeners hold it.
    const connection = new SignalConnection(socket, tcp, user, conn, connections);
    direct?.install(socket);
    return (err) => connection.onSocketError(err);
  };

  // The full path. Who connects is settled before the upgrade, so the socket handler is
  // synchronous and no early message can arrive before the user is attached.
  app.get(
    '/v1/connect',
    {
      websocket: true,
      preHandler: async (request) => {
        request.signalUser =
          (await signedInUser(request.cookies, request, identities, quotas.touchEveryMs)) ?? null;
      },
    },
    (socket, request) => {
      // First, while @fastify/websocket's 'error' listener is the socket's only one: taking
      // the only listener away gives the socket a fresh listener table, where deleting
      // one of several turns the table into a dictionary, 256 bytes more per idle
      // connection (heap snapshot, #17.1).
      // (The socket emits 'error' from a later turn, once `onError` below is set.)
      releaseUpgradeRequest(request, socket, (err) => onError(err));
      const onError = opened(socket, request.raw.socket, request.signalUser, request.id, request.ip);
    },
  );

  takeConnectUpgrades(app, opts, opened);
};

/** One upgrade the shortcut took, waiting for its batch (see UpgradeBatch). */
interface Waiting {
  request: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  fullPath: () => void;
}

/**
 * The shortcut's side of `/v1/connect`: upgrades taken from the HTTP server's 'upgrade',
 * answered a poll phase at a time (UpgradeBatch); `opened` makes each accepted socket a
 * connection, as on the full path.
 */
function takeConnectUpgrades(
  app: FastifyInstance,
  { config, identities, quotas, upgrades, log }: SignalConnectRouteOptions,
  opened: (socket: WebSocket, tcp: Socket, user: UserId | null, conn: string) => (err: Error) => void,
): void {
  // The shortcut: one ws server per prefix, with the surface's message limit (ws refuses
  // a larger frame from its header with 1009) and, as the shared one, no compression.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: Math.max(1024, config.maxFrameBytes),
    clientTracking: false,
    perMessageDeflate: false,
  });
  let accepted = 0;
  /**
   * A socket the shortcut upgraded. A function of its own, so the connection's error
   * listener closes over this scope, not the upgrade's (which holds the request).
   */
  const acceptUpgraded = (ws: WebSocket, tcp: Socket, user: UserId | null): void => {
    // The 'error' listener first, as on the full path (the listener table stays small).
    ws.on('error', (err) => onError(err));
    const onError = opened(ws, tcp, user, `signal-${(++accepted).toString(36)}`);
  };
  const batch = new UpgradeBatch<Waiting>(
    ({ request, socket, head, fullPath }) => {
      const cookies = app.parseCookie(request.headers.cookie ?? '');
      signedInUser(cookies, app, identities, quotas.touchEveryMs).then(
        (user) => {
          socket.removeListener('error', destroyOnError);
          // ws answers a bad handshake (400) itself, and ends a socket already gone. Under
          // every HTTP server (TLS included) the socket is a net.Socket.
          try {
            wss.handleUpgrade(request, socket, head, (ws) =>
              acceptUpgraded(ws, socket as Socket, user ?? null),
            );
          } catch (err) {
            // This server's fault (a connection that could not be made): a rejection
            // nobody handles otherwise, and a socket left open after its 101 with no
            // connection behind it. The client sees the close and may connect again.
            log.error({ err, user }, 'signal: an accepted upgrade could not be taken; socket closed');
            socket.destroy();
          }
        },
        () => {
          // The store out of reach: the full path asks again and answers as it always did.
          socket.removeListener('error', destroyOnError);
          if (!socket.destroyed) fullPath();
        },
      );
    },
    ({ socket }) => socket.destroy(),
    log,
  );
  upgrades.add(`${app.prefix}/v1/connect`, (request, socket, head, fullPath) => {
    socket.on('error', destroyOnError);
    batch.add({ request, socket, head, fullPath });
  });
}
