import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { counterAtScrape, gaugeAtScrape } from '../../server/scrape-metrics.js';
import type { WebSocket } from 'ws';
import type { Config } from '../../config/schema.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import type { BitePublisher } from '../../core/bite-publisher.js';
import type { WebSocketTracker } from '../../server/websocket-tracker.js';
import { beepBiteFormat } from './beep-bites.js';
import { BeepConversations } from './beep-conversations.js';
import { BeepIdentity, ClaimError, type Claim } from './beep-identity.js';
import { BeepPermissions } from './beep-permissions.js';
import { OVERLOADED_RETRY_AFTER_SECONDS } from '../../media/webrtc/sfu-error.js';
import { runSignaling } from './beep-signaling.js';

export interface BeepSurfaceOptions {
  config: Config['beep'];
  /** Conversations are rooms of the engine's model. */
  rooms: RoomRegistry;
  audio: AudioHub;
  sfu: Sfu;
  bites: BitePublisher;
  tracker: WebSocketTracker;
  registry: Registry;
  log: Logger;
}

const claims = new WeakMap<FastifyRequest, Claim>();

/**
 * The Beep surface (seed 003): `/connect` (SDP over a WebSocket) makes a voice peer,
 * `/join/:conversationid` (after backend-permissions agrees) puts all of the user's
 * clients in a conversation, where each hears the others, mixed by the server; speech is
 * published to NATS as bites. Errors are plain text with the original's statuses.
 */
export const beepPlugin: FastifyPluginAsync<BeepSurfaceOptions> = async (app, opts) => {
  const { config, log } = opts;
  const identity = new BeepIdentity(
    config.trustedProxies,
    config.tokenSecret,
    config.tokenMaxLifetimeSeconds,
  );
  const permissions = new BeepPermissions(config.permissionsHost, config.permissionsTimeoutMs, log);
  const conversations = new BeepConversations(
    opts.rooms,
    opts.audio,
    opts.bites,
    beepBiteFormat(config.storeSubjects),
    config.biteSeconds,
    log,
  );
  const anyOrigin = config.allowedOrigins.includes('*');

  app.addHook('preClose', async () => conversations.close());

  const { registry } = opts;
  gaugeAtScrape(
    registry,
    'chorus_beep_connections',
    'Beep voice connections (one per user client).',
    () => conversations.connectionCount,
  );
  gaugeAtScrape(
    registry,
    'chorus_beep_conversations',
    'Beep conversations with someone connected in them.',
    () => conversations.conversationCount,
  );
  counterAtScrape(
    registry,
    'chorus_bites_published_total',
    'Audio bites handed to NATS.',
    () => opts.bites.published,
  );
  counterAtScrape(
    registry,
    'chorus_sink_messages_dropped_total',
    'Messages (bites, stores) dropped because NATS was not connected.',
    () => opts.bites.dropped,
  );

  app.setErrorHandler(async (err: Error & { statusCode?: number }, request, reply) => {
    if (err instanceof ClaimError) {
      request.log.info({ status: err.status, refusal: err.message }, 'beep request refused');
      if (err.status === 503) void reply.header('retry-after', String(OVERLOADED_RETRY_AFTER_SECONDS));
      return reply.code(err.status).type('text/plain').send(err.message);
    }
    const status = err.statusCode ?? 500;
    if (status < 500) return reply.code(status).type('text/plain').send(err.message);
    request.log.error({ err }, 'beep: internal error');
    return reply.code(500).type('text/plain').send('Error establishing WebRTC connection');
  });

  /** Browsers send Origin: only this origin and the configured ones may connect. */
  const checkOrigin = (request: FastifyRequest) => {
    const origin = request.headers.origin;
    if (!origin || anyOrigin || config.allowedOrigins.includes(origin)) return;
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== request.headers.host) throw new ClaimError(403, `origin not allowed: ${origin}`);
  };

  app.get(
    '/connect',
    {
      websocket: true,
      preHandler: async (request: FastifyRequest, _reply: FastifyReply) => {
        checkOrigin(request);
        claims.set(request, await identity.claimOf(request));
        // Refused before the upgrade, as a plain 503 a client can retry on.
        const busy = opts.sfu.refusal();
        if (busy) throw new ClaimError(503, busy);
      },
    },
    (socket: WebSocket, request) => {
      opts.tracker.track('beep', socket);
      const claim = claims.get(request)!;
      const connLog = log.child({ user: claim.userid, client: claim.clientid });
      let peer;
      try {
        peer = opts.sfu.voicePeer(`beep-${claim.userid}`, connLog);
      } catch (err) {
        // Overloaded between the check above and now: 1013 is "try again later".
        socket.close(1013, (err as Error).message.slice(0, 120));
        return;
      }
      conversations.connect(claim, peer);
      runSignaling(socket, peer, connLog);
      connLog.info('beep connection');
    },
  );

  app.post<{ Params: { conversationid: string } }>('/join/:conversationid', async (request, reply) => {
    const claim = await identity.claimOf(request);
    const conversation = request.params.conversationid;
    if (!conversation || conversation.length > 256) throw new ClaimError(400, 'bad conversation id');
    await permissions.check(claim.userid, conversation);
    conversations.join(claim.userid, conversation);
    return reply.code(200).send('');
  });

  // An empty id (`/join/`) is a 400, as in the original.
  app.post('/join/', async () => {
    throw new ClaimError(400, 'bad conversation id');
  });

  // Chorus: how many are in a conversation (for dashboards and tests).
  app.get<{ Params: { conversationid: string } }>('/conversation/:conversationid', async (request) => {
    await identity.claimOf(request);
    return { members: conversations.members(request.params.conversationid) };
  });
};
