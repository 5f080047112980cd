import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { asUserId } from '../../core/ids.js';
import { asRoomId } from '../../core/room.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import { conferenceRoom } from './bluesky-quotas.js';
import type { RoomDirectory } from '../../core/room-directory.js';
import type { RoomSecrets } from '../../core/room-secrets.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import { surfaceErrorHandler } from '../surface-error-handler.js';
import { blueSkyErrors } from './bluesky-errors.js';
import { decodeOffer, encodeAnswer } from './bluesky-wire.js';
import type { BlueSkyQuotas } from './bluesky-quotas.js';

export interface BlueSkySurfaceOptions {
  directory: RoomDirectory;
  /** Shared by every prefix of the surface, so a second prefix is no second allowance. */
  quotas: BlueSkyQuotas;
  /** Admin and participant keys; checked only when `secureRooms` is on. */
  secrets: RoomSecrets;
  /** Largest session description taken (after base64 and gzip); larger: 413. */
  maxSdpBytes: number;
  /** Rooms are closed with the admin key and joined for a participant key (docs/bluesky.md). */
  secureRooms: boolean;
  rooms: RoomRegistry;
  sfu: Sfu;
  log: Logger;
}

/** user_id and peer ids: what a person's id looks like, safe in logs and URLs. */
const USER_ID = /^[-_.@A-Za-z0-9]{1,128}$/;

const fail = (reply: FastifyReply, status: number, error: string) => reply.code(status).send({ error });

/** The secured mode's credentials travel in headers, so seed bodies keep their shape. */
const ADMIN_KEY = 'x-admin-key';
const PARTICIPANT_KEY = 'x-participant-key';

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : undefined;
}

function bodyUser(request: FastifyRequest): string | undefined {
  const body = request.body as { user_id?: unknown } | undefined;
  return body && typeof body.user_id === 'string' && USER_ID.test(body.user_id) ? body.user_id : undefined;
}

/**
 * The Blue Sky surface (seed 004): rooms over REST and one SDP exchange per
 * (meeting, user, peer, sender?) on the SFU. Errors are `{"error": "..."}` as the
 * original's.
 */
export const blueSkyPlugin: FastifyPluginAsync<BlueSkySurfaceOptions> = async (app, opts) => {
  const { directory, quotas, secrets, rooms, sfu, log, maxSdpBytes, secureRooms } = opts;

  /**
   * Secured mode: false when `request` carries the key `check` accepts, else true once
   * the refusal is sent (401 without a key, 403 with a wrong one). A boolean, not the
   * reply: a reply is thenable, and awaiting it would wait for the response instead.
   */
  const refuseWithout = async (
    request: FastifyRequest,
    reply: FastifyReply,
    name: string,
    check: (key: string | undefined) => Promise<boolean>,
  ): Promise<boolean> => {
    if (!secureRooms) return false;
    const key = header(request, name);
    if (key && (await check(key))) return false;
    log.warn(
      { route: request.routeOptions.url, header: name, given: key !== undefined },
      'bluesky: key refused',
    );
    if (key === undefined)
      fail(reply, 401, `this server's rooms are secured: send the key in the ${name} header`);
    else fail(reply, 403, `wrong ${name} for this room`);
    return true;
  };

  // Bodies, offers and the SFU's refusals (busy: 503 with Retry-After) are mapped there.
  app.setErrorHandler(surfaceErrorHandler(blueSkyErrors));

  /** The open room, with its live state; undefined when unknown or closed. */
  const openRoom = async (id: string) => {
    const record = await directory.get(id);
    if (!record?.open) return undefined;
    return { record, room: rooms.open(asRoomId(record.id), conferenceRoom) };
  };

  app.put('/webrtc/room', async (request, reply) => {
    const user = bodyUser(request);
    if (!user) return fail(reply, 400, 'user_id is required: 1-128 letters, digits, - _ . @');
    const refusal = quotas.admitCreate(request.ip);
    if (refusal) {
      request.log.warn({ ip: request.ip }, `bluesky room creation refused: ${refusal.message}`);
      if (refusal.retryAfterSeconds) reply.header('retry-after', String(refusal.retryAfterSeconds));
      return fail(reply, 429, refusal.message);
    }
    const record = await directory.create(asUserId(user));
    quotas.created(request.ip, record.id);
    log.info({ room: record.id, admin: user, secured: secureRooms }, 'bluesky room created');
    if (!secureRooms) return reply.code(201).send({ id: record.id });
    // Only the creator ever sees these; the admin is also the room's first participant.
    const adminKey = await secrets.issueAdminKey(record.id);
    const participantKey = await secrets.claimParticipant(record.id, user);
    return reply.code(201).send({ id: record.id, admin_key: adminKey, participant_key: participantKey });
  });

  // Chorus: joining claims a user id in a room. Secured rooms answer the participant key
  // its SDP requests must carry (once: a user id already claimed is 409); otherwise
  // there is nothing to claim and the answer only confirms the room.
  app.post<{ Params: { meetingId: string } }>('/webrtc/room/:meetingId/join', async (request, reply) => {
    const found = await openRoom(request.params.meetingId);
    if (!found) return fail(reply, 404, `room not found: ${request.params.meetingId}`);
    const user = bodyUser(request);
    if (!user) return fail(reply, 400, 'user_id is required: 1-128 letters, digits, - _ . @');
    if (!secureRooms) return reply.code(200).send({ user_id: user });
    // Each claim stores a key: limited per address like room creation.
    const refusal = quotas.admitJoin(request.ip);
    if (refusal) {
      request.log.warn({ ip: request.ip }, `bluesky join refused: ${refusal.message}`);
      return fail(reply.header('retry-after', String(refusal.retryAfterSeconds)), 429, refusal.message);
    }
    const key = await secrets.claimParticipant(found.record.id, user);
    if (!key) return fail(reply, 409, `${user} has already joined this room: pick another user_id`);
    log.info({ room: found.record.id, user }, 'bluesky participant joined');
    return reply.code(201).send({ user_id: user, participant_key: key });
  });

  app.get('/webrtc/room', async () => directory.listOpen());

  // Chorus extension: who publishes in a room, so pages know whom to subscribe to.
  app.get<{ Params: { meetingId: string } }>('/webrtc/room/:meetingId', async (request, reply) => {
    const found = await openRoom(request.params.meetingId);
    if (!found) return fail(reply, 404, `room not found: ${request.params.meetingId}`);
    return { id: found.record.id, admin: found.record.admin, publishers: found.room.publishers() };
  });

  // Chorus: each publisher's tracks and how every subscriber receives them (loss and jitter
  // from their receiver reports), to answer "why is Bob's video choppy?".
  app.get<{ Params: { meetingId: string } }>('/webrtc/room/:meetingId/stats', async (request, reply) => {
    const found = await openRoom(request.params.meetingId);
    if (!found) return fail(reply, 404, `room not found: ${request.params.meetingId}`);
    return { id: found.record.id, ...sfu.roomStats(found.room) };
  });

  app.delete<{ Params: { meetingId: string } }>('/webrtc/room/:meetingId', async (request, reply) => {
    const found = await openRoom(request.params.meetingId);
    if (!found) return fail(reply, 404, `room not found: ${request.params.meetingId}`);
    if (secureRooms) {
      if (await refuseWithout(request, reply, ADMIN_KEY, (k) => secrets.checkAdminKey(found.record.id, k))) {
        return reply;
      }
    } else {
      const user = bodyUser(request);
      if (!user) return fail(reply, 400, 'user_id is required');
      if (user !== found.record.admin) return fail(reply, 403, 'only the room admin may close it');
    }
    await directory.close(found.record.id);
    quotas.released(found.record.id);
    if (secureRooms) await secrets.forget(found.record.id);
    // The cascade ends every participant's tracks and subscriptions, so every leg.
    found.room.close('room closed');
    log.info({ room: found.record.id }, 'bluesky room closed');
    return reply.code(204).send();
  });

  app.post<{ Params: { meetingId: string; userID: string; peerId: string; isSender: string } }>(
    '/webrtc/sdp/m/:meetingId/c/:userID/p/:peerId/s/:isSender',
    async (request, reply) => {
      const { meetingId, userID, peerId } = request.params;
      const found = await openRoom(meetingId);
      if (!found) return fail(reply, 404, `room not found: ${meetingId}`);
      await directory.touch(found.record.id, quotas.touchEveryMs);
      if (!USER_ID.test(userID) || !USER_ID.test(peerId)) return fail(reply, 400, 'invalid user or peer id');
      // Go's strconv.ParseBool; anything else is false, as in the original.
      const isSender = ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(request.params.isSender);
      // Before the body is decoded: a stranger's request costs no inflating.
      if (
        await refuseWithout(request, reply, PARTICIPANT_KEY, (k) =>
          secrets.checkParticipant(found.record.id, userID, k),
        )
      ) {
        return reply;
      }
      // Refusals from here on (a bad body or offer, a peer not publishing, a busy SFU) are
      // coded errors, answered by the error handler.
      const offer = await decodeOffer(request.body, maxSdpBytes);
      if (offer.type !== 'offer') return fail(reply, 400, `expected an offer, got ${offer.type}`);
      const answer = isSender
        ? await sfu.publish(found.room, asUserId(userID), offer.sdp)
        : await sfu.subscribe(found.room, asUserId(userID), asUserId(peerId), offer.sdp);
      return reply.send(encodeAnswer(answer, offer.encoding));
    },
  );
};
