import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { RoomDirectory } from '../../core/room-directory.js';
import type { RoomSecrets } from '../../core/room-secrets.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import { surfaceErrorHandler } from '../surface-error-handler.js';
import { blueSkyErrors } from './bluesky-errors.js';
import { blueSkyJoinRoute } from './bluesky-join-route.js';
import type { BlueSkyQuotas } from './bluesky-quotas.js';
import { BlueSkyRoomAccess } from './bluesky-room-access.js';
import { blueSkyRoomRoutes } from './bluesky-room-routes.js';
import { blueSkySdpRoute } from './bluesky-sdp-route.js';

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

/**
 * The Blue Sky surface (seed 004): rooms over REST and one SDP exchange per
 * (meeting, user, peer, sender?) on the SFU. Errors are `{"error": "..."}` as the
 * original's. One plugin per route group.
 */
export const blueSkyPlugin: FastifyPluginAsync<BlueSkySurfaceOptions> = async (app, opts) => {
  const { directory, quotas, secrets, rooms, sfu, log, maxSdpBytes, secureRooms } = opts;
  // Bodies, offers and the SFU's refusals (busy: 503 with Retry-After) are mapped there.
  app.setErrorHandler(surfaceErrorHandler(blueSkyErrors));
  const access = new BlueSkyRoomAccess(directory, rooms, secureRooms, log);

  await app.register(blueSkyRoomRoutes, { access, directory, quotas, secrets, sfu, log });
  await app.register(blueSkyJoinRoute, { access, quotas, secrets, log });
  await app.register(blueSkySdpRoute, { access, directory, quotas, secrets, maxSdpBytes, sfu });
};
