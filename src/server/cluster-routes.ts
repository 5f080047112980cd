import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import type { Membership } from '../ports/membership/membership.js';

/**
 * `GET /cluster/nodes` (admin): the live nodes as this node sees them, with their
 * URLs, WebRTC ports, load and versions: what an operator checks first when a node
 * seems missing. `heardMsAgo`: how long since this node last saw its heartbeat (every 2 s;
 * dropped after 6 s). On one node it lists itself.
 */
export function mountClusterRoutes(
  app: FastifyInstance,
  membership: Membership,
  guard: preHandlerAsyncHookHandler,
): void {
  app.get('/cluster/nodes', { preHandler: guard }, async () => ({
    self: membership.selfId,
    nodes: membership
      .nodes()
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((n) => ({ ...n, heardMsAgo: membership.heardMsAgo(n.id) ?? null })),
  }));
}
