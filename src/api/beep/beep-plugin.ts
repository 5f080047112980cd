import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { counterAtScrape, gaugeAtScrape } from '../../lib/scrape-metrics.js';
import type { WebSocket } from 'ws';
import type { Config } from '../../config/schema.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import type { BitePublisher } from '../../core/bite-publisher.js';
import type { Bus } from '../../ports/bus/bus.js';
import type { Membership } from '../../ports/membership/membership.js';
import type { Store } from '../../ports/store/store.js';
import type { SocketTracker } from '../surface-context.js';
import { beepBiteFormat } from './beep-bites.js';
import { BeepCluster } from './beep-cluster.js';
import { BeepConversations } from './beep-conversations.js';
import { BeepIdentity, type Claim } from './beep-identity.js';
import { BeepPermissions } from './beep-permissions.js';
import { BeepRelay } from './beep-relay.js';
import { ChorusError } from '../../core/errors.js';
import { OVERLOADED_RETRY_AFTER_SECONDS } from '../../media/webrtc/sfu.js';
import { closeAnswerFor, surfaceErrorHandler } from '../surface-error-handler.js';
import { beepErrors } from './beep-errors.js';
import { runSignaling } from './beep-signaling.js';

export interface BeepSurfaceOptions {
  config: Config['beep'];
  /** Conversations are rooms of the engine's model. */
  rooms: RoomRegistry;
  audio: AudioHub;
  sfu: Sfu;
  bites: BitePublisher;
  /** Users' conversations and the nodes holding their connections are shared through these. */
  bus: Bus;
  store: Store;
  membership: Membership;
  tracker: SocketTracker;
  registry: Registry;
  log: Logger;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Beep's `/connect`: who connects, settled before the upgrade (null: not yet). */
    beepClaim: Claim | null;
  }
}

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
  const relay = new BeepRelay(opts.bus, opts.membership, log);
  const conversations = new BeepConversations(
    opts.rooms,
    opts.audio,
    opts.bites,
    beepBiteFormat(config.storeSubjects),
    config.biteSeconds,
    relay,
    log,
  );

  const cluster = new BeepCluster(opts.bus, opts.store, opts.membership, conversations, log);
  cluster.start();

  app.addHook('preClose', async () => {
    cluster.close();
    conversations.close();
    relay.close();
  });

  registerBeepMetrics(opts.registry, conversations, opts.bites);
  registerRelayMetrics(opts.registry, conversations, relay);

  app.setErrorHandler(surfaceErrorHandler(beepErrors));

  const checkOrigin = (request: FastifyRequest) => checkBeepOrigin(request, config.allowedOrigins);

  app.decorateRequest('beepClaim', null);
  app.get(
    '/connect',
    {
      websocket: true,
      preHandler: async (request: FastifyRequest, _reply: FastifyReply) => {
        checkOrigin(request);
        request.beepClaim = await identity.claimOf(request);
        // Refused before the upgrade, as a plain 503 a client can retry on.
        const busy = opts.sfu.refusal();
        if (busy) {
          throw new ChorusError('overloaded', busy, { retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS });
        }
      },
    },
    (socket: WebSocket, request) => {
      opts.tracker.track('beep', socket);
      const claim = request.beepClaim;
      if (!claim) {
        // The preHandler settles the claim or refuses; reaching here without one is a bug.
        socket.close(1011, 'internal error');
        return;
      }
      const connLog = log.child({ user: claim.userid, client: claim.clientid });
      let peer;
      try {
        peer = opts.sfu.voicePeer(`beep-${claim.userid}`, connLog);
      } catch (err) {
        // Overloaded between the check above and now: 1013 is "try again later".
        const { code, reason } = closeAnswerFor(beepErrors, err, connLog);
        socket.close(code, reason);
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
    if (!conversation || conversation.length > 256)
      throw new ChorusError('invalid_argument', 'bad conversation id');
    await permissions.check(claim.userid, conversation);
    await cluster.join(claim.userid, conversation);
    return reply.code(200).send('');
  });

  // An empty id (`/join/`) is a 400, as in the original.
  app.post('/join/', async () => {
    throw new ChorusError('invalid_argument', 'bad conversation id');
  });

  // Chorus: how many are in a conversation on every node (for dashboards and tests).
  app.get<{ Params: { conversationid: string } }>('/conversation/:conversationid', async (request) => {
    await identity.claimOf(request);
    const conversation = request.params.conversationid;
    if (!conversation || conversation.length > 256)
      throw new ChorusError('invalid_argument', 'bad conversation id');
    return { members: await cluster.members(conversation) };
  });
};

/** Beep's gauges and counters, read at scrape time. */
function registerBeepMetrics(
  registry: Registry,
  conversations: BeepConversations,
  bites: BitePublisher,
): void {
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
    () => bites.published,
  );
  counterAtScrape(
    registry,
    'chorus_sink_messages_dropped_total',
    'Messages (bites, stores) dropped because NATS was not connected.',
    () => bites.dropped,
  );
}

/** The relay between nodes: what goes out once per speaker, what comes in from each node. */
function registerRelayMetrics(registry: Registry, conversations: BeepConversations, relay: BeepRelay): void {
  counterAtScrape(
    registry,
    'chorus_beep_voice_packets_total',
    "Opus packets received from this node's Beep clients (speakers).",
    () => conversations.voicePackets,
  );
  counterAtScrape(
    registry,
    'chorus_beep_relay_sent_packets_total',
    "This node's speakers' packets published to the other nodes holding their conversation (once each).",
    () => relay.sentPackets,
  );
  new Counter({
    name: 'chorus_beep_relay_received_packets_total',
    help: 'Speaker packets received from other nodes, by the node they came from.',
    labelNames: ['from'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [from, c] of relay.receivedByNode()) this.inc({ from }, c.n);
    },
  });
  gaugeAtScrape(
    registry,
    'chorus_beep_relay_links',
    'Other nodes this node hears a conversation from (one per conversation and node).',
    () => relay.peerLinks,
  );
  gaugeAtScrape(
    registry,
    'chorus_beep_relay_remote_speakers',
    'Speakers of other nodes mixed into conversations here.',
    () => relay.remoteSpeakers,
  );
}

/** Browsers send Origin: only the page's own origin and the configured ones may connect. */
function checkBeepOrigin(request: FastifyRequest, allowed: readonly string[]): void {
  const origin = request.headers.origin;
  if (!origin || allowed.includes('*') || allowed.includes(origin)) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host !== request.headers.host) throw new ChorusError('forbidden', `origin not allowed: ${origin}`);
}
