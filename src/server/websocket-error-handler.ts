import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { clipClientText, type ThrottledLog } from '../lib/throttled-log.js';

/**
 * What @fastify/websocket calls with errors of an open socket. Its default logs each at
 * `error` with a stack and terminates, so any client could fill the error log with bad
 * frames. Here:
 * - protocol errors (`ws` codes `WS_ERR_*`: invalid UTF-8, unmasked frames, RSV bits, bad
 *   opcodes, frames over the limit) are the client's: one throttled `warn` line; `ws` has
 *   already sent the close frame (1002/1007/1009) and ends the socket itself;
 * - network errors are the client leaving: throttled `debug`, terminate;
 * - anything else is a bug in a handler: `error` with the stack, terminate.
 */
export function websocketErrorHandler(
  clientLog: ThrottledLog,
  log: Logger,
): (error: Error, socket: WebSocket, request: FastifyRequest) => void {
  return (error, socket, request) => {
    const code = (error as NodeJS.ErrnoException).code;
    const where = { ip: request.ip, url: clipClientText(request.url.split('?')[0] ?? '') };
    if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
      clientLog.warn({ ...where, code, reason: error.message }, 'websocket protocol error');
      return;
    }
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      clientLog.debug({ ...where, code }, 'websocket network error');
    } else {
      log.error({ ...where, err: error }, 'websocket handler failed');
    }
    socket.terminate();
  };
}
