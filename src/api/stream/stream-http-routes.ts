import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../../config/schema.js';
import type { StreamCluster } from './stream-cluster.js';
import { StreamText, validStreamId } from './stream-wire.js';

export interface StreamHttpRoutesOptions {
  config: Config['stream'];
  cluster: StreamCluster;
}

/** The Stream surface's plain HTTP: a channel's counters and the original's banner. */
export const streamHttpRoutes: FastifyPluginAsync<StreamHttpRoutesOptions> = async (app, opts) => {
  const { config, cluster } = opts;

  // The whole cluster's counters, whichever node answers (one node: its own).
  app.get<{ Params: { channel: string } }>('/stream-stats/:channel', async (request, reply) => {
    const id = request.params.channel;
    if (!validStreamId(id, config.idMaxLength))
      return reply.code(404).type('text/plain').send(StreamText.invalidChannel);
    return { channel: id, ...(await cluster.stats(id)) };
  });

  app.get('/', async (_request, reply) => reply.type('text/plain').send(StreamText.banner));
};
