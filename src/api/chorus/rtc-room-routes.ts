import { z } from 'zod';
import { ChorusError } from '../../core/errors.js';
import { identity, roomName } from './access-token.js';
import { route, type ChorusRoute } from './chorus-route.js';
import type { NativeRooms } from './native-rooms.js';
import type { RtcRoomFeed } from './rtc-room-feed.js';
import { MAX_DATA_PAYLOAD } from './rtc-schemas.js';

const nameParams = z.object({ name: roomName });
const trackParams = z.object({ name: roomName, identity, track: z.string().min(1).max(300) });
const muteBody = z.object({ muted: z.boolean() }).strict();
const dataBody = z
  .object({
    /** Text for the application (binary: base64 it). */
    data: z.string().max(MAX_DATA_PAYLOAD),
    /** Absent or empty: everyone in the room. */
    destinationIdentities: z.array(identity).max(100).optional(),
    topic: z.string().max(128).optional(),
  })
  .strict();

/**
 * The room service's routes that act on live participants through the native signalling:
 * mute a published track, send data (`/chorus/v1/rooms/{name}/...`).
 */
export function rtcRoomRoutes(rooms: NativeRooms, feed: RtcRoomFeed): ChorusRoute[] {
  return [
    route({
      method: 'POST',
      path: '/rooms/{name}/participants/{identity}/tracks/{track}/mute',
      summary:
        "Mute or unmute a participant's published track (the SFU stops forwarding it; only the room service can unmute it)",
      access: { grant: 'roomAdmin' },
      params: trackParams,
      body: muteBody,
      async handle({ params, body }) {
        if (!(await rooms.muteTrack(params.name, params.identity, params.track, body.muted)))
          throw new ChorusError(
            'not_found',
            `no track ${params.track} of ${params.identity} in room ${params.name}`,
          );
      },
    }),
    route({
      method: 'POST',
      path: '/rooms/{name}/data',
      summary: 'Send data to the participants of a room (all, or destinationIdentities), on every node',
      access: { grant: 'roomAdmin' },
      params: nameParams,
      body: dataBody,
      async handle({ params, body }) {
        feed.publish(params.name, {
          type: 'data',
          payload: body.data,
          ...(body.topic === undefined ? {} : { topic: body.topic }),
          ...(body.destinationIdentities === undefined ? {} : { to: body.destinationIdentities }),
        });
      },
    }),
  ];
}
