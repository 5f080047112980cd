import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { Bus } from '../../ports/bus/bus.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
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
import { RtcRoomFeed } from './rtc-room-feed.js';
import { rtcRoomRoutes } from './rtc-room-routes.js';
import { rtcRoute } from './rtc-route.js';
import { RtcSessions } from './rtc-sessions.js';
import { RoomWebhooks } from './room-webhooks.js';
import { WebhookSender } from './webhook-sender.js';
import { whipOpenApiPaths } from './whip-openapi.js';
import { whipRoutes } from './whip-routes.js';
import { WhipSessions } from './whip-sessions.js';

export interface ChorusSurfaceOptions {
  /** `key:secret` pairs (CHORUS_API_KEYS). */
  apiKeys: readonly string[];
  rooms: RoomRegistry;
  bus: Bus;
  store: Store;
  membership: Membership;
  /** The SFU WHIP publishes into and WHEP views from. */
  sfu: Sfu;
  /** Where webhooks go (CHORUS_WEBHOOK_URLS); signed with the first API key. */
  webhookUrls: readonly string[];
  registry: Registry;
  /** Counts the surface's WebSockets and closes them on shutdown. */
  trackSocket: (socket: import('ws').WebSocket) => void;
  /** Pings the signalling sockets, so a half-open one is noticed (then resumable). */
  heartbeats: HeartbeatScheduler;
  log: Logger;
}

/** How long a dropped signalling session waits for its client to resume. */
const RESUME_GRACE_MS = 20_000;

/** The API's version, in its paths and its OpenAPI document. */
const VERSION = 'v1';

/**
 * Chorus's own API under `/chorus/v1/`: the room service (routes declared with zod in
 * room-routes.ts), its OpenAPI document and a page that renders it. Errors are
 * `{"error": {"code", "message"}}` with the error table's status.
 */
export const chorusPlugin: FastifyPluginAsync<ChorusSurfaceOptions> = async (app, opts) => {
  app.setErrorHandler(surfaceErrorHandler(chorusErrors));
  const keys = new ApiKeys(opts.apiKeys);
  const access = new ChorusAccess(keys);
  if (opts.webhookUrls.length > 0) {
    // Config refuses URLs without a key to sign them (schema.ts), so `first` is there.
    const sender = new WebhookSender({
      urls: opts.webhookUrls,
      signer: keys.first!,
      node: opts.membership.selfId,
      registry: opts.registry,
      log: opts.log,
    });
    const webhooks = new RoomWebhooks(
      opts.rooms,
      sender,
      opts.store,
      opts.membership.selfId,
      opts.log,
      (room, who) => feed.joiningQuietly(room, who),
    );
    app.addHook('onClose', async () => {
      webhooks.close();
      sender.close();
    });
  }
  const rooms = new NativeRooms(opts.store, opts.bus, opts.membership, opts.rooms, opts.log);
  app.addHook('onClose', async () => rooms.close());
  // Native signalling: sessions on this node, each room's changes from every node.
  const feed: RtcRoomFeed = new RtcRoomFeed(
    opts.rooms,
    opts.bus,
    opts.membership.selfId,
    (room, who) => rtcSessions.describe(room, who),
    opts.sfu.speakers,
    opts.log,
  );
  const rtcSessions: RtcSessions = new RtcSessions(
    opts.rooms,
    rooms,
    opts.sfu,
    feed,
    { resumeGraceMs: RESUME_GRACE_MS, heartbeats: opts.heartbeats },
    opts.log,
    opts.bus,
    opts.membership,
  );
  rooms.describe = (room, who) => rtcSessions.describe(room, who);
  app.addHook('onClose', async () => {
    await rtcSessions.close();
    feed.close();
  });
  await app.register(rtcRoute, { keys, sessions: rtcSessions, track: opts.trackSocket, log: opts.log });
  const routes = [...roomRoutes(rooms), ...rtcRoomRoutes(rooms, feed)];
  mountRoutes(app, access, routes);
  const sessions = new WhipSessions(opts.rooms, opts.sfu, opts.bus, opts.log);
  app.addHook('onClose', async () => sessions.close());
  await app.register(whipRoutes, { access, rooms, sessions });

  const prefix = `/chorus/${VERSION}`;
  // Generated with the first request for it, not at start: an idle server need not hold the
  // document, nor the JSON schemas it is made of (#17.2).
  let spec: string | undefined;
  const openApiSpec = (): string => {
    if (spec !== undefined) return spec;
    const doc = openApiDocument(prefix, VERSION, routes) as { paths: Record<string, unknown> };
    return (spec = JSON.stringify({ ...doc, paths: { ...doc.paths, ...whipOpenApiPaths(prefix) } }));
  };
  app.get('/openapi.json', async (_req, reply) => reply.type('application/json').send(openApiSpec()));
  const page = docsPage(`${prefix}/openapi.json`);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
};
