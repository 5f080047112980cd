import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../../config/schema.js';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';
import { StreamText, validStreamId } from './stream-wire.js';

export interface StreamHttpRoutesOptions {
  config: Config['stream'];
  streams: StreamRegistry;
}

/** The Stream surface's plain HTTP: a channel's counters and the original's banner. */
export const streamHttpRoutes: FastifyPluginAsync<StreamHttpRoutesOptions> = async (app, opts) => {
  const { config, streams } = opts;

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
