import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import type { StreamChannel } from '../../media/stream/stream-channel.js';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';
import { IpConnectionLimiter } from '../../lib/ip-connection-limiter.js';
import { IpMatcher } from '../../lib/ip-matcher.js';
import type { SocketTracker } from '../surface-context.js';
import { CoordinatorClient } from './coordinator-client.js';
import { StreamMetrics, type RefusalReason } from './stream-metrics.js';
import { PublisherSession, ReceiverSession, type StreamLiveness } from './stream-session.js';
import { StreamText, isStreamKind, validStreamId, type StreamKind } from './stream-wire.js';

export interface StreamSurfaceOptions {
  config: Config['stream'];
  network: Config['network'];
  streams: StreamRegistry;
  tracker: SocketTracker;
  /** The server's heartbeat wheel: the text heartbeat and the idle timeout. */
  heartbeats: HeartbeatScheduler;
  registry: Registry;
  log: Logger;
}

interface StreamParams {
  channel: string;
  key: string;
  kind: string;
}

/** What the checks before the upgrade settled for one request. */
interface Admission {
  ip: string;
  channel: StreamChannel;
  kind: StreamKind;
  key: string;
  /** Set for an authorized publish: the coordinator's stream id ('' standalone). */
  streamId?: string;
  /** True once a WebSocket session owns the admission (and will release it). */
  taken: boolean;
  release: () => void;
}

const admissions = new WeakMap<FastifyRequest, Admission>();

/**
 * The ws-stream-server surface (seed 002): `/{channel}/{key}/{kind}` WebSockets with the
 * original's plain-text refusals before the upgrade, the coordinator link, limits.
 */
export const streamPlugin: FastifyPluginAsync<StreamSurfaceOptions> = async (app, opts) => {
  const { config, network, streams, tracker, log } = opts;
  const playWhitelist = new IpMatcher(config.playWhitelist);
  const limiter = new IpConnectionLimiter(config.maxIpConcurrentConnections, config.concurrentLimitWhitelist);

  const coordinator = config.controlBaseUrl
    ? new CoordinatorClient(
        {
          baseUrl: config.controlBaseUrl,
          secret: config.controlSecret,
          externalIp: network.externalIp,
          externalPort: network.externalPort,
          externalSsl: network.externalSsl,
          publishTimeoutMs: config.controlPublishTimeoutSeconds * 1000,
          reconnectMaxMs: config.controlReconnectMaxSeconds * 1000,
        },
        {
          kill: (channel, streamId) => {
            const done = streams.kill(channel, streamId, 'coordinator STREAM-KILL');
            log.info({ channel, streamId, done }, 'coordinator asked to kill a stream');
          },
          connected: () => {
            const n = streams.killAll('coordinator reconnected');
            if (n > 0) log.warn({ publishers: n }, 'coordinator (re)connected: active publishers closed');
          },
        },
        log.child({ component: 'coordinator' }),
      )
    : undefined;
  coordinator?.start();
  if (!coordinator) log.info('stream: standalone mode, any publishing key is accepted');

  const metrics = new StreamMetrics(opts.registry, streams, () => coordinator?.connected);

  const liveness: StreamLiveness = {
    heartbeats: opts.heartbeats,
    heartbeatMs: config.heartbeatSeconds * 1000,
    idleMs: config.idleTimeoutSeconds * 1000,
  };
  app.addHook('onClose', async () => {
    await coordinator?.close();
  });

  const refuse = (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    text: string,
    reason: RefusalReason,
  ) => {
    metrics.refusals.inc({ reason });
    log.warn({ ip: request.ip, url: request.url.split('?')[0], reason, status }, 'stream connection refused');
    return reply.code(status).type('text/plain; charset=utf-8').send(text);
  };

  // Admission slots not taken by a WebSocket session are given back when the HTTP
  // exchange ends (a refusal, a plain GET, an upgrade that never completed).
  app.addHook('onResponse', async (request) => {
    const a = admissions.get(request);
    if (a && !a.taken) a.release();
  });

  const admit = async (request: FastifyRequest<{ Params: StreamParams }>, reply: FastifyReply) => {
    const { channel: channelId, key, kind } = request.params;
    const ip = request.ip;
    // 1. Per-IP concurrency, before anything else (as the original).
    if (!limiter.acquire(ip))
      return refuse(request, reply, 429, StreamText.tooManyRequests, 'too_many_connections');
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      limiter.release(ip);
    };
    // 2. Ids, 3. kind.
    let problem: [number, string, RefusalReason] | undefined;
    if (!validStreamId(channelId, config.idMaxLength))
      problem = [404, StreamText.invalidChannel, 'invalid_channel'];
    else if (!validStreamId(key, config.idMaxLength)) problem = [404, StreamText.invalidKey, 'invalid_key'];
    else if (!isStreamKind(kind)) problem = [404, StreamText.invalidKind, 'invalid_kind'];
    if (problem) {
      release();
      return refuse(request, reply, ...problem);
    }
    const channel = streams.channel(channelId);
    const admission: Admission = {
      ip,
      channel,
      kind: kind as StreamKind,
      key,
      taken: false,
      release: () => {
        release();
        streams.release(channel);
      },
    };
    admissions.set(request, admission);

    if (kind === 'publish') {
      // 4. One publisher per channel; the slot is held while the coordinator decides.
      if (!channel.reserve())
        return refuse(request, reply, 403, StreamText.alreadyPublishing, 'already_publishing');
      const unreserve = admission.release;
      admission.release = () => {
        channel.unreserve();
        unreserve();
      };
      if (coordinator) {
        const decision = await coordinator.requestPublish(channelId, key, ip);
        if (!decision.accepted) {
          log.warn(
            { channel: channelId, reason: decision.reason },
            'coordinator did not authorize the publish',
          );
          return refuse(request, reply, 403, StreamText.publishDenied, 'publish_denied');
        }
        admission.streamId = decision.streamId;
        const base = admission.release;
        admission.release = () => {
          // Accepted but the publisher never arrived: the coordinator must not think it is live.
          coordinator.publishEnd(channelId, decision.streamId);
          base();
        };
        if (request.raw.socket.destroyed) {
          admission.release();
          admission.taken = true;
          return reply;
        }
      } else {
        admission.streamId = '';
      }
      return;
    }
    // 5. Receivers must come from an allowed address.
    if (!playWhitelist.isEmpty && !playWhitelist.matches(ip)) {
      return refuse(request, reply, 403, StreamText.notWhitelisted, 'not_whitelisted');
    }
  };

  app.route<{ Params: StreamParams }>({
    method: 'GET',
    url: '/:channel/:key/:kind',
    preHandler: admit,
    handler: async (_request, reply) =>
      reply.code(426).header('upgrade', 'websocket').type('text/plain').send('Expected a WebSocket upgrade.'),
    wsHandler: (socket, request) => {
      const a = admissions.get(request);
      if (!a) {
        socket.terminate();
        return;
      }
      a.taken = true;
      tracker.track('stream', socket);
      const connLog = log.child({ channel: a.channel.id, kind: a.kind, conn: request.id });
      if (a.kind === 'publish') {
        const publisher = new PublisherSession(socket, connLog, liveness, a.channel, config.maxMessageBytes);
        a.channel.startPublishing(a.key, a.streamId ?? '', publisher);
        socket.once('close', () => {
          a.channel.endPublishing();
          if (coordinator && a.streamId !== undefined) coordinator.publishEnd(a.channel.id, a.streamId);
          limiterRelease(a);
        });
      } else {
        const receiver = new ReceiverSession(socket, connLog, liveness, a.channel, a.key, a.kind);
        socket.once('close', () => {
          a.channel.removeReceiver(receiver.receiver);
          limiterRelease(a);
        });
      }
      socket.once('close', (code) => {
        connLog.info({ code }, 'stream connection closed');
      });
      connLog.info({ ip: a.ip }, 'stream connection open');
    },
  });

  /** After a session ends: the IP slot and, when idle, the channel. */
  const limiterRelease = (a: Admission): void => {
    limiter.release(a.ip);
    streams.release(a.channel);
  };

  app.get<{ Params: { channel: string } }>('/stream-stats/:channel', async (request, reply) => {
    const id = request.params.channel;
    if (!validStreamId(id, config.idMaxLength))
      return reply.code(404).type('text/plain').send(StreamText.invalidChannel);
    const c = streams.find(id);
    return {
      channel: id,
      publishing: c?.isPublishing ?? false,
      receivers: c?.receiverCount ?? 0,
      chunksIn: c?.chunksIn ?? 0,
      bytesIn: c?.bytesIn ?? 0,
      bytesOut: c?.bytesOut ?? 0,
      dropped: c?.dropped ?? 0,
      cacheBytes: c?.cacheBytes ?? 0,
      cacheChunks: c?.cacheChunks ?? 0,
      maxReceiverQueueBytes: c?.maxQueuedBytes() ?? 0,
    };
  });

  app.get('/', async (_request, reply) => reply.type('text/plain').send(StreamText.banner));
};
