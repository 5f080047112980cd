import { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';

/**
 * Lets go of the HTTP exchange a WebSocket was upgraded from, which otherwise lives as
 * long as the socket: about 3.4 KiB a connection, a third of an idle Signal socket (the
 * request and its headers, the response never sent, Fastify's request, reply and child
 * logger, the read buffer holding the upgrade). Two things hold it:
 * - the response @fastify/websocket assigns to the socket for routing stays assigned
 *   (the reply is hijacked, never finished), with Fastify's finish listener on it;
 * - @fastify/websocket's 'error' listener closes over the request and reply.
 * `onError` replaces that listener, so it must handle every 'error' the socket emits
 * (ws reports a client's protocol error there, and closes the socket itself).
 */
export function releaseUpgradeRequest(
  request: FastifyRequest,
  socket: WebSocket,
  onError: (err: Error) => void,
): void {
  const raw = request.raw.socket as Socket & { _httpMessage?: unknown };
  if (raw._httpMessage instanceof ServerResponse) raw._httpMessage.detachSocket(raw);
  socket.removeAllListeners('error');
  socket.on('error', onError);
}
