import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { UpgradeShortcut, UpgradeShortcutRegistry } from '../api/surface-context.js';

type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * WebSocket upgrades a surface takes straight from the HTTP server's 'upgrade' event,
 * before Fastify's request lifecycle (routing, a request and a reply, hooks, a child
 * logger, a ServerResponse that @fastify/websocket assigns to the socket): for the one
 * route whose accept cost is a goal (Signal's `/v1/connect`, #17.1). Every other upgrade,
 * and any a shortcut hands back (`fullPath`), goes through Fastify as before; so does
 * everything while the server drains or stops, where the drain gate answers 503.
 *
 * Matched on the method (GET) and the exact path, the query string aside: anything else
 * (another method, a trailing slash, percent-encoding) takes the full path, whose router
 * gives the same answer it always gave.
 */
export class UpgradeShortcuts implements UpgradeShortcutRegistry {
  private readonly routes = new Map<string, UpgradeShortcut>();

  /**
   * Takes over the server's 'upgrade' listeners (@fastify/websocket's): they are called,
   * in order, for every upgrade no shortcut takes.
   */
  constructor(server: Server, accepting: () => boolean) {
    const full = server.listeners('upgrade') as UpgradeListener[];
    server.removeAllListeners('upgrade');
    const fullPath = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      for (const listener of full) listener.call(server, request, socket, head);
    };
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const shortcut = request.method === 'GET' && accepting() ? this.match(request.url) : undefined;
      if (!shortcut) {
        fullPath(request, socket, head);
        return;
      }
      shortcut(request, socket, head, () => fullPath(request, socket, head));
    });
  }

  add(path: string, shortcut: UpgradeShortcut): void {
    this.routes.set(path, shortcut);
  }

  private match(url: string | undefined): UpgradeShortcut | undefined {
    if (url === undefined || this.routes.size === 0) return undefined;
    const q = url.indexOf('?');
    return this.routes.get(q === -1 ? url : url.slice(0, q));
  }
}
