import type { FastifyPluginAsync } from 'fastify';
import { asUserId } from '../../core/ids.js';
import type { RoomDirectory } from '../../core/room-directory.js';
import type { RoomSecrets } from '../../core/room-secrets.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import type { BlueSkyQuotas } from './bluesky-quotas.js';
import { PARTICIPANT_KEY, USER_ID, fail, type BlueSkyRoomAccess } from './bluesky-room-access.js';
import { decodeOffer, encodeAnswer } from './bluesky-wire.js';

export interface BlueSkySdpRouteOptions {
  access: BlueSkyRoomAccess;
  directory: RoomDirectory;
  quotas: BlueSkyQuotas;
  secrets: RoomSecrets;
  /** Largest session description taken (after base64 and gzip); larger: 413. */
  maxSdpBytes: number;
  sfu: Sfu;
}

interface SdpParams {
  meetingId: string;
  userID: string;
  peerId: string;
  isSender: string;
}

/** The SDP exchange: one offer and answer per (meeting, user, peer, sender?) on the SFU. */
export const blueSkySdpRoute: FastifyPluginAsync<BlueSkySdpRouteOptions> = async (app, opts) => {
  const { access, directory, quotas, secrets, maxSdpBytes, sfu } = opts;

  app.post<{ Params: SdpParams }>(
    '/webrtc/sdp/m/:meetingId/c/:userID/p/:peerId/s/:isSender',
    async (request, reply) => {
      const { meetingId, userID, peerId } = request.params;
      const found = await access.openRoom(meetingId);
      if (!found) return fail(reply, 404, `room not found: ${meetingId}`);
      await directory.touch(found.record.id, quotas.touchEveryMs);
      if (!USER_ID.test(userID) || !USER_ID.test(peerId)) return fail(reply, 400, 'invalid user or peer id');
      // Go's strconv.ParseBool; anything else is false, as in the original.
      const isSender = ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(request.params.isSender);
      // Before the body is decoded: a stranger's request costs no inflating.
      if (
        await access.refuseWithout(request, reply, PARTICIPANT_KEY, (k) =>
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
