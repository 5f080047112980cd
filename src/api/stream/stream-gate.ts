import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { IpConnectionLimiter } from '../../lib/ip-connection-limiter.js';
import { IpMatcher } from '../../lib/ip-matcher.js';
import type { StreamChannel } from '../../media/stream/stream-channel.js';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';
import type { CoordinatorClient } from './coordinator-client.js';
import type { PublisherClaims } from './publisher-claims.js';
import type { RefusalReason, StreamMetrics } from './stream-metrics.js';
import type { StreamRelay } from './stream-relay.js';
import { StreamText, isStreamKind, validStreamId, type StreamKind } from './stream-wire.js';

export interface StreamParams {
  channel: string;
  key: string;
  kind: string;
}

/** What the checks before the upgrade settled for one request. */
export interface Admission {
  ip: string;
  channel: StreamChannel;
  kind: StreamKind;
  key: string;
  /** Set for an authorized publish: the coordinator's stream id ('' standalone). */
  streamId?: string;
  /** True once a WebSocket session owns the admission (and will release it). */
  taken: boolean;
  /** A publisher's cluster-wide claim of the channel, by id (given back when its session ends). */
  claimId?: string | undefined;
  /** A receiver whose key is not the one the channel is published with on another node. */
  wrongKey?: boolean;
  release: () => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The Stream surface's admission, from its preHandler to its wsHandler (null elsewhere). */
    streamAdmission: Admission | null;
  }
}

export interface StreamGateOptions {
  config: Config['stream'];
  streams: StreamRegistry;
  coordinator: CoordinatorClient | undefined;
  /** One publisher per channel across the nodes, and its key. */
  claims: PublisherClaims;
  /** Ends here a remote publishing that a publisher arriving here took over. */
  relay: StreamRelay;
  metrics: StreamMetrics;
  log: Logger;
}

/**
 * The checks before a Stream upgrade, in the original's order, with its plain-text
 * refusals: per-IP concurrency, ids, kind, one publisher per channel (and the
 * coordinator's word), the play allow list. Owns the per-IP connection counts.
 */
export class StreamGate {
  private readonly playWhitelist: IpMatcher;
  private readonly limiter: IpConnectionLimiter;

  constructor(private readonly opts: StreamGateOptions) {
    const { config } = opts;
    this.playWhitelist = new IpMatcher(config.playWhitelist);
    this.limiter = new IpConnectionLimiter(
      config.maxIpConcurrentConnections,
      config.concurrentLimitWhitelist,
    );
  }

  /** The preHandler: refuses, or leaves the request's `streamAdmission` set for the socket. */
  readonly admit = async (
    request: FastifyRequest<{ Params: StreamParams }>,
    reply: FastifyReply,
  ): Promise<FastifyReply | undefined> => {
    const { config, streams } = this.opts;
    const { channel: channelId, key, kind } = request.params;
    const ip = request.ip;
    // 1. Per-IP concurrency, before anything else (as the original).
    if (!this.limiter.acquire(ip))
      return this.refuse(request, reply, 429, StreamText.tooManyRequests, 'too_many_connections');
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.limiter.release(ip);
    };
    // 2. Ids, 3. kind.
    let problem: [number, string, RefusalReason] | undefined;
    if (!validStreamId(channelId, config.idMaxLength))
      problem = [404, StreamText.invalidChannel, 'invalid_channel'];
    else if (!validStreamId(key, config.idMaxLength)) problem = [404, StreamText.invalidKey, 'invalid_key'];
    else if (!isStreamKind(kind)) problem = [404, StreamText.invalidKind, 'invalid_kind'];
    if (problem) {
      release();
      return this.refuse(request, reply, ...problem);
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
    request.streamAdmission = admission;
    if (kind === 'publish') return this.admitPublisher(request, reply, admission);
    // 5. Receivers must come from an allowed address.
    if (!this.playWhitelist.isEmpty && !this.playWhitelist.matches(ip)) {
      return this.refuse(request, reply, 403, StreamText.notWhitelisted, 'not_whitelisted');
    }
    if (!channel.isPublishing) admission.wrongKey = await this.wrongKeyElsewhere(channel.id, key);
    return undefined;
  };

  /** After a session ends: the IP slot, the channel's claim and, when idle, the channel. */
  sessionEnded(a: Admission): void {
    this.limiter.release(a.ip);
    if (a.claimId) this.unclaim(a);
    this.opts.streams.release(a.channel);
  }

  /**
   * A receiver here for a channel published on another node must present that
   * publisher's key, as on one node. The store being out of reach is no refusal: the
   * receiver waits, and its key is checked when the stream starts.
   */
  private async wrongKeyElsewhere(channelId: string, key: string): Promise<boolean> {
    const { claims, log } = this.opts;
    try {
      const holder = await claims.holder(channelId);
      return holder !== undefined && !claims.isMine(holder) && !sameKey(holder.key, key);
    } catch (err) {
      log.debug({ err, channel: channelId }, 'stream: could not read the channel claim for a receiver');
      return false;
    }
  }

  private unclaim(a: Admission): void {
    const id = a.claimId;
    if (!id) return;
    a.claimId = undefined;
    this.opts.claims
      .release(a.channel.id, id)
      .catch((err: unknown) =>
        this.opts.log.warn(
          { err, channel: a.channel.id },
          'stream: could not release the channel claim yet; trying again',
        ),
      );
  }

  /** 4. One publisher per channel; the slot is held while the coordinator decides. */
  private async admitPublisher(
    request: FastifyRequest,
    reply: FastifyReply,
    admission: Admission,
  ): Promise<FastifyReply | undefined> {
    const { coordinator, log } = this.opts;
    const { channel } = admission;
    // A channel relayed here from another node's publisher is the claim's to decide: that
    // node may have died, and the publisher now reconnecting here takes the channel over.
    const relayed = channel.relayed;
    if (!relayed && !channel.reserve())
      return this.refuse(request, reply, 403, StreamText.alreadyPublishing, 'already_publishing');
    const unreserve = admission.release;
    let reserved = !relayed;
    admission.release = () => {
      if (reserved) channel.unreserve();
      unreserve();
    };
    // One publisher per channel across the nodes: the store's create-if-absent decides.
    let claimId: string | undefined;
    try {
      claimId = await this.opts.claims.claim(channel.id, admission.key);
    } catch (err) {
      log.warn({ err, channel: channel.id }, 'stream: the cluster store did not answer a publish');
      return this.refuse(request, reply, 503, StreamText.unavailable, 'cluster_unavailable');
    }
    if (!claimId) return this.refuse(request, reply, 403, StreamText.alreadyPublishing, 'already_publishing');
    admission.claimId = claimId;
    const unclaimed = admission.release;
    admission.release = () => {
      if (admission.claimId) this.unclaim(admission);
      unclaimed();
    };
    if (!reserved) {
      this.opts.relay.dropRemote(channel);
      reserved = channel.reserve();
      if (!reserved)
        return this.refuse(request, reply, 403, StreamText.alreadyPublishing, 'already_publishing');
    }
    if (!coordinator) {
      admission.streamId = '';
      return undefined;
    }
    const decision = await coordinator.requestPublish(channel.id, admission.key, admission.ip);
    if (!decision.accepted) {
      log.warn({ channel: channel.id, reason: decision.reason }, 'coordinator did not authorize the publish');
      return this.refuse(request, reply, 403, StreamText.publishDenied, 'publish_denied');
    }
    admission.streamId = decision.streamId;
    const base = admission.release;
    admission.release = () => {
      // Accepted but the publisher never arrived: the coordinator must not think it is live.
      coordinator.publishEnd(channel.id, decision.streamId);
      base();
    };
    if (request.raw.socket.destroyed) {
      admission.release();
      admission.taken = true;
      return reply;
    }
    return undefined;
  }

  private refuse(
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    text: string,
    reason: RefusalReason,
  ): FastifyReply {
    this.opts.metrics.refusals.inc({ reason });
    this.opts.log.warn(
      { ip: request.ip, url: request.url.split('?')[0], reason, status },
      'stream connection refused',
    );
    return reply.code(status).type('text/plain; charset=utf-8').send(text);
  }
}

/** Keys compared in constant time (through digests, so lengths do not show either). */
function sameKey(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
