import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ChorusError } from '../../core/errors.js';
import { releaseUpgradeRequest } from '../release-upgrade-request.js';
import type { ApiKeys } from './access-token.js';
import type { JoinClaims, RtcSessions } from './rtc-sessions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** `/chorus/v1/rtc`: the joining token's claims, settled before the upgrade (null: none). */
    chorusRtc: { claims: JoinClaims; resume: { token: string; lastSeq: number } | undefined } | null;
  }
}

export interface RtcRouteOptions {
  keys: ApiKeys;
  sessions: RtcSessions;
  /** Counts and closes the surface's sockets on shutdown. */
  track: (socket: import('ws').WebSocket) => void;
  log: Logger;
}

interface RtcQuery {
  access_token?: string;
  resume?: string;
  last_seq?: string;
}

/**
 * `GET /chorus/v1/rtc`: the native signalling socket. The token (query `access_token`,
 * as browsers cannot set headers, or `Authorization: Bearer`) is checked before the
 * upgrade, so a refusal is an HTTP 401/403 with the native error body, not a socket.
 */
export const rtcRoute: FastifyPluginAsync<RtcRouteOptions> = async (app, opts) => {
  const { keys, sessions, log } = opts;
  app.decorateRequest('chorusRtc', null);
  app.get(
    '/rtc',
    {
      websocket: true,
      preHandler: async (request) => {
        request.chorusRtc = await admit(request, keys);
      },
    },
    (socket, request) => {
      opts.track(socket);
      const admitted = request.chorusRtc;
      releaseUpgradeRequest(request, socket, (err) =>
        log.warn({ err: err.message }, 'chorus rtc: socket error'),
      );
      if (!admitted) {
        socket.close(4401, 'unauthenticated');
        return;
      }
      sessions.connect(socket, admitted.claims, admitted.resume).catch((err: unknown) => {
        log.warn({ err }, 'chorus rtc: connect failed');
        socket.close(4503, 'unavailable');
      });
    },
  );
};

/** The claims of a token that may join its room, and the resume asked for; throws 401/403. */
async function admit(
  request: FastifyRequest,
  keys: ApiKeys,
): Promise<{ claims: JoinClaims; resume: { token: string; lastSeq: number } | undefined }> {
  const q = request.query as RtcQuery;
  const header = request.headers.authorization;
  const bearer = header === undefined ? undefined : /^Bearer +(\S+)$/i.exec(header)?.[1];
  const token = q.access_token ?? bearer;
  if (token === undefined)
    throw new ChorusError(
      'unauthenticated',
      'missing access token: ?access_token=<JWT> or Authorization: Bearer',
    );
  if (keys.size === 0)
    throw new ChorusError('unauthenticated', 'no API keys are configured (CHORUS_API_KEYS)');
  const claims = await keys.verify(token);
  const { room, identity } = claims;
  if (room === undefined) throw new ChorusError('forbidden', 'token names no room');
  if (identity === undefined) throw new ChorusError('forbidden', 'token names no identity (sub)');
  if (claims.grants.roomJoin !== true)
    throw new ChorusError('forbidden', `token lacks the roomJoin grant for room ${room}`, {
      grant: 'roomJoin',
    });
  let resume: { token: string; lastSeq: number } | undefined;
  if (q.resume !== undefined) {
    const lastSeq = Number(q.last_seq ?? '0');
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(q.resume) || !Number.isSafeInteger(lastSeq) || lastSeq < 0)
      throw new ChorusError('invalid_argument', 'resume wants ?resume=<resumeToken>&last_seq=<integer>');
    resume = { token: q.resume, lastSeq };
  }
  return { claims: { ...claims, room, identity }, resume };
}
