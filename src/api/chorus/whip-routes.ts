import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ChorusError } from '../../core/errors.js';
import { parseOffer } from '../../media/webrtc/sdp-validation.js';
import { identity, roomName, type AccessClaims, type GrantName } from './access-token.js';
import type { ChorusAccess } from './chorus-access.js';
import type { NativeRooms } from './native-rooms.js';
import { parseIceFragment, TRICKLE_ICE_SDPFRAG } from './whip-patch.js';
import type { WhipKind, WhipSessions } from './whip-sessions.js';

export interface WhipRoutesOptions {
  access: ChorusAccess;
  rooms: NativeRooms;
  sessions: WhipSessions;
}

/** Largest offer taken (a browser's offer with simulcast and many codecs is ~10 KiB); larger: 413. */
export const MAX_OFFER_BYTES = 64 * 1024;

export const whipParams = z.object({ room: roomName });
export const whepParams = z.object({ room: roomName, identity });
export const sessionId = z.string().regex(/^[A-Za-z0-9_-]{22}$/, { error: 'not a session id' });

const SDP = 'application/sdp';
const TRICKLE = TRICKLE_ICE_SDPFRAG;

/** CORS for browser WHIP/WHEP clients on other origins (RFC 9725 4.8): any origin, bearer tokens. */
const CORS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, PATCH, DELETE, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, if-match',
  'access-control-expose-headers': 'location, etag, link, accept-post, accept-patch, allow',
};

function params<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const at = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new ChorusError('invalid_argument', `invalid path: ${at}${issue?.message ?? 'malformed'}`);
}

/** The body as an SDP offer; 415 for another content type. */
function offerOf(request: FastifyRequest): string {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== SDP)
    throw new ChorusError('invalid_argument', `expected content-type: ${SDP}, got ${type || 'none'}`, {
      httpStatus: 415,
    });
  return typeof request.body === 'string' ? request.body : '';
}

/**
 * The token's claims once it may act in `room` with every one of `grants` (room grants
 * apply to the token's own room; `roomAdmin` of the room, or of every room, also ends
 * sessions); ChorusError `forbidden` otherwise.
 */
async function claimsFor(
  access: ChorusAccess,
  request: FastifyRequest,
  room: string,
  grants: readonly GrantName[],
): Promise<AccessClaims & { identity: string }> {
  const claims = await access.claims(request);
  if (claims.room !== room)
    throw new ChorusError(
      'forbidden',
      claims.room === undefined
        ? `token names no room (needs room ${room})`
        : `token is for room ${claims.room}, not ${room}`,
    );
  for (const g of grants)
    if (claims.grants[g] !== true)
      throw new ChorusError('forbidden', `token lacks the ${g} grant for room ${room}`);
  if (claims.identity === undefined) throw new ChorusError('forbidden', 'token names no identity (sub)');
  return { ...claims, identity: claims.identity };
}

/** A WHIP offer may only send what `canPublishSources` covers: audio is the microphone, video the camera. */
function checkSources(claims: AccessClaims, offer: string): void {
  const allowed = claims.grants.canPublishSources;
  if (allowed === undefined) return;
  for (const m of parseOffer(offer).media) {
    if (m.direction !== 'sendonly' && m.direction !== 'sendrecv') continue;
    const source = m.kind === 'audio' ? 'microphone' : m.kind === 'video' ? 'camera' : undefined;
    if (source && !allowed.includes(source))
      throw new ChorusError(
        'forbidden',
        `token's canPublishSources does not cover ${source} (the offer sends ${m.kind})`,
      );
  }
}

/**
 * WHIP (RFC 9725) and WHEP on the SFU: `POST /whip/{room}` publishes, `POST
 * /whep/{room}/{identity}` views one participant; each answers 201 with the SDP answer and
 * the session's `Location`, which `DELETE` ends and `PATCH` trickles the client's
 * candidates to (RFC 9725 4.3.1; no ICE restart: 422). The answer carries every candidate
 * of the server (it sends none later).
 */
export const whipRoutes: FastifyPluginAsync<WhipRoutesOptions> = async (app, opts) => {
  const { access, rooms, sessions } = opts;
  app.addContentTypeParser(
    [SDP, TRICKLE],
    { parseAs: 'string', bodyLimit: MAX_OFFER_BYTES },
    (_req, body, done) => done(null, body),
  );
  app.addHook('onSend', async (_request, reply) => {
    reply.headers(CORS);
  });

  /** The room's record, and a join past its `maxParticipants` refused (checked at join, not atomic). */
  async function admit(room: string, who: string): Promise<void> {
    const record = await rooms.get(room);
    if (!record) throw new ChorusError('not_found', `no room ${room}`, { room });
    if (record.maxParticipants === 0) return;
    const present = await rooms.participants(room);
    if (!present.some((p) => p.identity === who) && present.length >= record.maxParticipants)
      throw new ChorusError('capacity', `room ${room} is full (${record.maxParticipants})`, { room });
  }

  const created = (reply: FastifyReply, location: string, answer: string): FastifyReply =>
    reply
      .code(201)
      .header('location', location)
      .header('etag', `"${location.split('/').pop()!}"`)
      .type(SDP)
      .send(answer);

  app.post('/whip/:room', async (request, reply) => {
    const { room } = params(whipParams, request.params);
    const claims = await claimsFor(access, request, room, ['roomJoin', 'canPublish']);
    const offer = offerOf(request);
    await admit(room, claims.identity);
    checkSources(claims, offer);
    const { id, answer } = await sessions.publish(room, claims.identity, offer);
    return created(reply, `${app.prefix}/whip/${encodeURIComponent(room)}/${id}`, answer);
  });

  app.post('/whep/:room/:identity', async (request, reply) => {
    const { room, identity: publisher } = params(whepParams, request.params);
    const claims = await claimsFor(access, request, room, ['roomJoin', 'canSubscribe']);
    const offer = offerOf(request);
    await admit(room, claims.identity);
    const { id, answer } = await sessions.view(room, claims.identity, publisher, offer);
    return created(
      reply,
      `${app.prefix}/whep/${encodeURIComponent(room)}/${encodeURIComponent(publisher)}/${id}`,
      answer,
    );
  });

  /** The session a DELETE or PATCH names, and who acts on it (undefined: a room admin). */
  async function sessionOf(
    request: FastifyRequest,
  ): Promise<{ room: string; id: string; by: string | undefined }> {
    const p = request.params as { room?: unknown; session?: unknown; identity?: unknown };
    const { room } = params(whipParams, { room: p.room });
    const id = params(sessionId, p.session);
    const claims = await access.claims(request);
    const admin = claims.grants.roomAdmin === true && (claims.room === undefined || claims.room === room);
    // Anyone else acts only on a session of their own identity (another's is 404: not theirs to see).
    const by = admin ? undefined : (await claimsFor(access, request, room, ['roomJoin'])).identity;
    return { room, id, by };
  }

  const end = (kind: WhipKind) => async (request: FastifyRequest, reply: FastifyReply) => {
    const { room, id, by } = await sessionOf(request);
    if (!(await sessions.end(kind, room, id, by)))
      throw new ChorusError('not_found', `no ${kind.toUpperCase()} session ${id} in room ${room}`);
    return reply.code(200).send();
  };
  app.delete('/whip/:room/:session', end('whip'));
  app.delete('/whep/:room/:identity/:session', end('whep'));

  // Trickle ICE (RFC 9725 4.3.1): the client's candidates, on whichever node holds the
  // session. An ICE restart (new credentials, `If-Match: *`) is not supported: 422, as the
  // RFC says for an endpoint that supports only one of the two.
  const patch = (kind: WhipKind) => async (request: FastifyRequest, reply: FastifyReply) => {
    const { room, id, by } = await sessionOf(request);
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== TRICKLE)
      throw new ChorusError('invalid_argument', `expected content-type: ${TRICKLE}, got ${type || 'none'}`, {
        httpStatus: 415,
      });
    const ifMatch = request.headers['if-match']?.trim();
    if (ifMatch === '*')
      throw new ChorusError('invalid_argument', 'ICE restarts are not supported (start a new session)', {
        httpStatus: 422,
      });
    // The ETag is the session id (a missing If-Match is taken: some clients send none).
    if (ifMatch !== undefined && ifMatch !== `"${id}"` && ifMatch !== `W/"${id}"`)
      throw new ChorusError(
        'invalid_argument',
        `If-Match ${ifMatch.slice(0, 40)} is not this session's ETag`,
        {
          httpStatus: 412,
        },
      );
    const frag = parseIceFragment(typeof request.body === 'string' ? request.body : '');
    if (!(await sessions.trickle(kind, room, id, by, frag)))
      throw new ChorusError('not_found', `no ${kind.toUpperCase()} session ${id} in room ${room}`);
    return reply.code(204).header('etag', `"${id}"`).send();
  };
  app.patch('/whip/:room/:session', patch('whip'));
  app.patch('/whep/:room/:identity/:session', patch('whep'));

  // CORS preflight, and what an endpoint takes (RFC 9725 4.8: Accept-Post on OPTIONS).
  const options = (allow: string) => async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.code(204).header('allow', allow).header('accept-post', SDP).send();
  // A session's resource takes trickle ICE fragments (RFC 9725 4.3.1: Accept-Patch).
  const sessionOptions = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.code(204).header('allow', 'PATCH, DELETE, OPTIONS').header('accept-patch', TRICKLE).send();
  app.options('/whip/:room', options('POST, OPTIONS'));
  app.options('/whep/:room/:identity', options('POST, OPTIONS'));
  app.options('/whip/:room/:session', sessionOptions);
  app.options('/whep/:room/:identity/:session', sessionOptions);
};
