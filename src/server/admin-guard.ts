import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { errorBody } from '../api/error-table.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * A preHandler for admin routes: `Authorization: Bearer <ADMIN_TOKEN>`, or open to all
 * when the operator set ADMIN_OPEN. Without either, admin routes are refused.
 */
export function adminGuard(config: Config['admin']) {
  const expected = config.token === undefined ? undefined : digest(config.token);
  return async function checkAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (config.open) return;
    if (!expected) {
      request.log.warn({ route: request.url }, 'admin route refused: no ADMIN_TOKEN configured');
      await reply
        .code(403)
        .send(errorBody('forbidden', 'admin routes are disabled: set ADMIN_TOKEN (or ADMIN_OPEN=YES)'));
      return;
    }
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    // Compare digests so the comparison time does not depend on the token's length.
    if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected)) {
      request.log.warn({ route: request.url }, 'admin route refused: bad or missing bearer token');
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="chorus-admin"')
        .send(errorBody('unauthenticated', 'admin credential required: Authorization: Bearer <ADMIN_TOKEN>'));
    }
  };
}
