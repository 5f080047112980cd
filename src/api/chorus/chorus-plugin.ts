import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { Bus } from '../../ports/bus/bus.js';
import type { Membership } from '../../ports/membership/membership.js';
import type { Store } from '../../ports/store/store.js';
import { chorusErrors } from '../error-table.js';
import { surfaceErrorHandler } from '../surface-error-handler.js';
import { ApiKeys } from './access-token.js';
import { ChorusAccess } from './chorus-access.js';
import { mountRoutes, openApiDocument } from './chorus-route.js';
import { docsPage } from './docs-page.js';
import { NativeRooms } from './native-rooms.js';
import { roomRoutes } from './room-routes.js';

export interface ChorusSurfaceOptions {
  /** `key:secret` pairs (CHORUS_API_KEYS). */
  apiKeys: readonly string[];
  rooms: RoomRegistry;
  bus: Bus;
  store: Store;
  membership: Membership;
  log: Logger;
}

/** The API's version, in its paths and its OpenAPI document. */
const VERSION = 'v1';

/**
 * Chorus's own API under `/chorus/v1/`: the room service (routes declared with zod in
 * room-routes.ts), its OpenAPI document and a page that renders it. Errors are
 * `{"error": {"code", "message"}}` with the error table's status.
 */
export const chorusPlugin: FastifyPluginAsync<ChorusSurfaceOptions> = async (app, opts) => {
  app.setErrorHandler(surfaceErrorHandler(chorusErrors));
  const access = new ChorusAccess(new ApiKeys(opts.apiKeys));
  const rooms = new NativeRooms(opts.store, opts.bus, opts.membership, opts.rooms, opts.log);
  app.addHook('onClose', async () => rooms.close());
  const routes = roomRoutes(rooms);
  mountRoutes(app, access, routes);

  const prefix = `/chorus/${VERSION}`;
  const spec = JSON.stringify(openApiDocument(prefix, VERSION, routes));
  app.get('/openapi.json', async (_req, reply) => reply.type('application/json').send(spec));
  const page = docsPage(`${prefix}/openapi.json`);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
};
