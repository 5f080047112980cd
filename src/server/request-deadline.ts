import { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ThrottledLog } from '../lib/throttled-log.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Marks a route whose body is a live stream (an audio upload): it has no whole-request
     * deadline, only this idle timeout (no byte received for so long closes it).
     */
    bodyIdleTimeoutMs?: number;
  }
}

/**
 * A deadline for receiving each request whole (headers and body). Node's own
 * `requestTimeout` is one value for the whole server and the audio upload routes need
 * none, so it is off and this takes its place, per route: a body not received within
 * `ms` gets 408 and the connection is closed. Streaming routes get an idle timeout
 * instead. Node's `headersTimeout` still bounds the headers.
 */
export function addRequestDeadline(app: FastifyInstance, ms: number, clientLog: ThrottledLog): void {
  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    const idleMs = request.routeOptions.config.bodyIdleTimeoutMs;
    if (idleMs !== undefined) {
      // With no 'timeout' listener on the request, Node destroys an idle socket.
      if (idleMs > 0) raw.setTimeout(idleMs);
      done();
      return;
    }
    // An in-process request (`app.inject`) has no network peer that could be slow, and
    // its stand-in socket can neither complete nor be destroyed.
    if (ms <= 0 || request.ws || !(raw.socket instanceof Socket)) {
      done();
      return;
    }
    const timer = setTimeout(() => {
      // Checked when the time is up: most requests are whole long before.
      if (raw.complete || raw.destroyed) return;
      clientLog.warn(
        { ip: request.ip, method: request.method, url: request.url.split('?')[0]?.slice(0, 200) },
        'request not received within the deadline; closing',
      );
      // Answered by the route's own error handler (Chorus JSON or the seed's text), as
      // a failed body read: the body reader is told through the stream it listens to.
      // Nobody reading (or already answered): only closing is left.
      if (reply.raw.headersSent || raw.listenerCount('error') === 0) {
        raw.socket.destroy();
        return;
      }
      reply.raw.shouldKeepAlive = false;
      raw.emit(
        'error',
        Object.assign(new Error(`request not received within ${Math.round(ms / 1000)} s`), {
          statusCode: 408,
          code: 'REQUEST_TIMEOUT',
        }),
      );
    }, ms);
    // A route may answer without reading the body (a 404, a refusal): the rest of a slow
    // body is still held to the deadline then.
    reply.raw.once('close', () => {
      if (raw.complete) clearTimeout(timer);
    });
    done();
  });
}
