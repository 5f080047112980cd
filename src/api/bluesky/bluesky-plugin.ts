import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { asUserId } from '../../core/ids.js';
import { asRoomId, type RoomRegistry } from '../../core/room.js';
import type { RoomDirectory } from '../../core/room-directory.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import { SdpError } from '../../media/webrtc/sdp.js';
import { OVERLOADED_RETRY_AFTER_SECONDS, SfuError } from '../../media/webrtc/sfu-error.js';
import { SignalBodyError, decodeOffer, encodeAnswer } from './bluesky-wire.js';
import type { BlueSkyQuotas } from './bluesky-quotas.js';

export interface BlueSkySurfaceOptions {
  directory: RoomDirectory;
  /** Shared by every prefix of the surface, so a second prefix is no second allowance. */
  quotas: BlueSkyQuotas;
  rooms: RoomRegistry;
  sfu: Sfu;
  log: Logger;
}

/** user_id and peer ids: what a person's id looks like, safe in logs and URLs. */
const USER_ID = /^[-_.@A-Za-z0-9]{1,128}$/;

const fail = (reply: FastifyReply, status: number, error: string) => reply.code(status).send({ error });

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
  const { directory, quotas, rooms, sfu, log } = opts;

  app.setErrorHandler(async (err: { statusCode?: number; message: string }, request, reply) => {
    const status = err.statusCode ?? 500;
    if (status < 500) return fail(reply, status === 415 ? 400 : status, err.message);
    request.log.error({ err }, 'bluesky: internal error');
    return fail(reply, 500, 'internal error');
  });

  /** The open room, with its live state; undefined when unknown or closed. */
  const openRoom = async (id: string) => {
    const record = await directory.get(id);
    if (!record?.open) return undefined;
    return { record, room: rooms.open(asRoomId(record.id)) };
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
    log.info({ room: record.id, admin: user }, 'bluesky room created');
    return reply.code(201).send({ id: record.id });
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
    const user = bodyUser(request);
    if (!user) return fail(reply, 400, 'user_id is required');
    if (user !== found.record.admin) return fail(reply, 403, 'only the room admin may close it');
    await directory.close(found.record.id);
    quotas.released(found.record.id);
    sfu.closeRoom(found.room);
    rooms.close(found.room.id);
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
      let offer;
      try {
        offer = decodeOffer(request.body);
      } catch (err) {
        return fail(reply, 400, (err as Error).message);
      }
      if (offer.type !== 'offer') return fail(reply, 400, `expected an offer, got ${offer.type}`);
      try {
        const answer = isSender
          ? await sfu.publish(found.room, asUserId(userID), offer.sdp)
          : await sfu.subscribe(found.room, asUserId(userID), asUserId(peerId), offer.sdp);
        return reply.send(encodeAnswer(answer, offer.encoding));
      } catch (err) {
        if (err instanceof SdpError || err instanceof SignalBodyError) return fail(reply, 400, err.message);
        if (err instanceof SfuError) {
          if (err.code === 'nothing_to_subscribe' && !sfu.isPublishing(found.room, asUserId(peerId))) {
            return fail(reply, 404, err.message);
          }
          if (err.code === 'overloaded') {
            return fail(
              reply.header('retry-after', String(OVERLOADED_RETRY_AFTER_SECONDS)),
              503,
              err.message,
            );
          }
          if (err.code === 'negotiation_failed') {
            request.log.error({ err }, 'bluesky: negotiation failed');
            return fail(reply, 500, err.message);
          }
          return fail(reply, 400, err.message);
        }
        throw err;
      }
    },
  );
};
