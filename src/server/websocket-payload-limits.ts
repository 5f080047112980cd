import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

type HandleUpgrade = (
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  callback: (client: WebSocket, request: IncomingMessage) => void,
) => void;

/**
 * Each surface's own largest WebSocket message, enforced by `ws` itself: a frame whose
 * header announces more is refused with 1009 before its payload is read.
 *
 * @fastify/websocket has one `ws` server and so one `maxPayload` for every route. Its
 * upgrades all go through that server's `handleUpgrade`; this makes it hand each upgrade
 * to a `ws` server of the request's own limit (one per distinct limit, made once). A
 * request without a limit (no surface claimed it) keeps the shared server's.
 */
export class WebSocketPayloadLimits {
  private readonly limits = new WeakMap<IncomingMessage, number>();
  private readonly servers = new Map<number, WebSocketServer>();

  /** Called before the upgrade (an onRequest hook of the surface's routes). */
  set(request: IncomingMessage, maxPayload: number): void {
    // ws reads 0 as "no limit": never let a surface without WebSockets open that door.
    this.limits.set(request, Math.max(1024, maxPayload));
  }

  install(shared: WebSocketServer): void {
    const sharedUpgrade: HandleUpgrade = shared.handleUpgrade.bind(shared);
    const delegating: HandleUpgrade = (request, socket, head, callback) => {
      const limit = this.limits.get(request);
      if (limit === undefined) sharedUpgrade(request, socket, head, callback);
      else this.serverFor(limit, shared).handleUpgrade(request, socket, head, callback);
    };
    shared.handleUpgrade = delegating;
  }

  private serverFor(maxPayload: number, shared: WebSocketServer): WebSocketServer {
    let server = this.servers.get(maxPayload);
    if (!server) {
      server = new WebSocketServer({
        noServer: true,
        maxPayload,
        // The WebSocketTracker knows the open sockets; these servers keep no list.
        clientTracking: false,
        perMessageDeflate: shared.options.perMessageDeflate ?? false,
      });
      this.servers.set(maxPayload, server);
    }
    return server;
  }
}
