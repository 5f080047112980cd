import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { RoomSecrets } from '../../core/room-secrets.js';
import type { BlueSkyQuotas } from './bluesky-quotas.js';
import { bodyUser, fail, type BlueSkyRoomAccess } from './bluesky-room-access.js';

export interface BlueSkyJoinRouteOptions {
  access: BlueSkyRoomAccess;
  quotas: BlueSkyQuotas;
  secrets: RoomSecrets;
  log: Logger;
}

/**
 * Chorus: joining claims a user id in a room. Secured rooms answer the participant key
 * its SDP requests must carry (once: a user id already claimed is 409); otherwise there
 * is nothing to claim and the answer only confirms the room.
 */
export const blueSkyJoinRoute: FastifyPluginAsync<BlueSkyJoinRouteOptions> = async (app, opts) => {
  const { access, quotas, secrets, log } = opts;

  app.post<{ Params: { meetingId: string } }>('/webrtc/room/:meetingId/join', async (request, reply) => {
    const found = await access.openRoom(request.params.meetingId);
    if (!found) return fail(reply, 404, `room not found: ${request.params.meetingId}`);
    const user = bodyUser(request);
    if (!user) return fail(reply, 400, 'user_id is required: 1-128 letters, digits, - _ . @');
    if (!access.secureRooms) return reply.code(200).send({ user_id: user });
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
};
