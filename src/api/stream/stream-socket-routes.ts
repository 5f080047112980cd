import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { SocketTracker } from '../surface-context.js';
import type { CoordinatorClient } from './coordinator-client.js';
import type { StreamGate, StreamParams } from './stream-gate.js';
import { PublisherSession, ReceiverSession, type StreamLiveness } from './stream-session.js';
import type { StreamRelay } from './stream-relay.js';
import { StreamClose, StreamText } from './stream-wire.js';

export interface StreamSocketRoutesOptions {
  config: Config['stream'];
  gate: StreamGate;
  coordinator: CoordinatorClient | undefined;
  liveness: StreamLiveness;
  /** Carries channels to and from the other nodes (nothing to do on one node). */
  relay: StreamRelay;
  tracker: SocketTracker;
  log: Logger;
}

/**
 * `/{channel}/{key}/{kind}`: the publisher and receiver WebSockets. The gate settles who
 * may connect before the upgrade and hands its admission to the socket on the request.
 */
export const streamSocketRoutes: FastifyPluginAsync<StreamSocketRoutesOptions> = async (app, opts) => {
  const { config, gate, coordinator, liveness, relay, tracker, log } = opts;
  app.decorateRequest('streamAdmission', null);

  // Admission slots not taken by a WebSocket session are given back when the HTTP
  // exchange ends (a refusal, a plain GET, an upgrade that never completed).
  app.addHook('onResponse', async (request) => {
    const a = request.streamAdmission;
    if (a && !a.taken) a.release();
  });

  app.route<{ Params: StreamParams }>({
    method: 'GET',
    url: '/:channel/:key/:kind',
    preHandler: gate.admit,
    handler: async (_request, reply) =>
      reply.code(426).header('upgrade', 'websocket').type('text/plain').send('Expected a WebSocket upgrade.'),
    wsHandler: (socket, request) => {
      const a = request.streamAdmission;
      if (!a) {
        socket.terminate();
        return;
      }
      a.taken = true;
      tracker.track('stream', socket);
      const connLog = log.child({ channel: a.channel.id, kind: a.kind, conn: request.id });
      if (a.wrongKey) {
        // Published on another node with another key: refused as a local publisher's would be.
        connLog.warn('receiver key does not match the publisher (on another node)');
        socket.once('close', () => gate.sessionEnded(a));
        socket.send(StreamText.invalidStreamingKey);
        socket.close(StreamClose.invalidKey.code, StreamClose.invalidKey.reason);
        return;
      }
      if (a.kind === 'publish') {
        const publisher = new PublisherSession(socket, connLog, liveness, a.channel, config.maxMessageBytes);
        a.channel.startPublishing(a.key, a.streamId ?? '', publisher);
        relay.localPublisherStarted(a.channel, a.key);
        socket.once('close', () => {
          a.channel.endPublishing();
          relay.localPublisherEnded(a.channel);
          if (coordinator && a.streamId !== undefined) coordinator.publishEnd(a.channel.id, a.streamId);
          gate.sessionEnded(a);
        });
      } else {
        const receiver = new ReceiverSession(socket, connLog, liveness, a.channel, a.key, a.kind);
        relay.receiversChanged(a.channel);
        socket.once('close', () => {
          a.channel.removeReceiver(receiver.receiver);
          relay.receiversChanged(a.channel);
          gate.sessionEnded(a);
        });
      }
      socket.once('close', (code) => {
        connLog.info({ code }, 'stream connection closed');
      });
      connLog.info({ ip: a.ip }, 'stream connection open');
    },
  });
};
