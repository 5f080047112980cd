import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { asUserId } from '../../core/ids.js';
import type { RoomDirectory } from '../../core/room-directory.js';
import type { RoomSecrets } from '../../core/room-secrets.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import type { BlueSkyQuotas } from './bluesky-quotas.js';
import { ADMIN_KEY, bodyUser, fail, type BlueSkyRoomAccess } from './bluesky-room-access.js';

export interface BlueSkyRoomRoutesOptions {
  access: BlueSkyRoomAccess;
  directory: RoomDirectory;
  quotas: BlueSkyQuotas;
  secrets: RoomSecrets;
  sfu: Sfu;
  log: Logger;
}

/** Rooms over REST: create, list, look at one (publishers, stats), close. */
export const blueSkyRoomRoutes: FastifyPluginAsync<BlueSkyRoomRoutesOptions> = async (app, opts) => {
  const { access, directory, quotas, secrets, sfu, log } = opts;
  const { secureRooms } = access;

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

  app.get('/webrtc/room', async () => directory.listOpen());

  // Chorus extension: who publishes in a room, so pages know whom to subscribe to.
  app.get<{ Params: { meetingId: string } }>('/webrtc/room/:meetingId', async (request, reply) => {
    const found = await access.openRoom(request.params.meetingId);
    if (!found) return fail(reply, 404, `room not found: ${request.params.meetingId}`);
    // Publishers on every node: a page subscribes to each through its own node.
    return { id: found.record.id, admin: found.record.admin, publishers: await sfu.publishersOf(found.room) };
  });

  // Chorus: each publisher's tracks and how every subscriber receives them (loss and jitter
  // from their receiver reports), to answer "why is Bob's video choppy?".
  app.get<{ Params: { meetingId: string } }>('/webrtc/room/:meetingId/stats', async (request, reply) => {
    const found = await access.openRoom(request.params.meetingId);
    if (!found) return fail(reply, 404, `room not found: ${request.params.meetingId}`);
    return { id: found.record.id, ...sfu.roomStats(found.room) };
  });

  app.delete<{ Params: { meetingId: string } }>('/webrtc/room/:meetingId', async (request, reply) => {
    const found = await access.openRoom(request.params.meetingId);
    if (!found) return fail(reply, 404, `room not found: ${request.params.meetingId}`);
    if (secureRooms) {
      if (
        await access.refuseWithout(request, reply, ADMIN_KEY, (k) =>
          secrets.checkAdminKey(found.record.id, k),
        )
      ) {
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
};
