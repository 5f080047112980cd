import type { FastifyRequest } from 'fastify';
import { ChorusError } from '../../core/errors.js';
import type { AccessClaims, ApiKeys, GrantName } from './access-token.js';

/** What a route asks of the caller's token (documented per route in the OpenAPI spec). */
export type AccessRule =
  /** A service-wide grant: `roomCreate` or `roomList`. */
  | { grant: 'roomCreate' | 'roomList' }
  /** `roomAdmin` for the room the request names (a token naming no room covers every room). */
  | { grant: 'roomAdmin' }
  /** `roomList`, or `roomAdmin` for the room named. */
  | { grant: 'roomListOrAdmin' };

/**
 * Who may use the native API: a Bearer access token signed with one of the API keys
 * (401 when missing or invalid), holding the grant its route needs (403 otherwise).
 */
export class ChorusAccess {
  constructor(private readonly keys: ApiKeys) {}

  /** The caller's verified claims; ChorusError `unauthenticated` when there is no valid token. */
  async claims(request: FastifyRequest): Promise<AccessClaims> {
    const header = request.headers.authorization;
    if (header === undefined)
      throw new ChorusError('unauthenticated', 'missing Authorization: Bearer <access token>');
    const match = /^Bearer +(\S+)$/i.exec(header);
    if (!match) throw new ChorusError('unauthenticated', 'expected Authorization: Bearer <access token>');
    if (this.keys.size === 0)
      throw new ChorusError('unauthenticated', 'no API keys are configured (CHORUS_API_KEYS)');
    return this.keys.verify(match[1]!);
  }

  /** The claims, once they satisfy `rule` for `room`; ChorusError `forbidden` otherwise. */
  async check(request: FastifyRequest, rule: AccessRule, room?: string): Promise<AccessClaims> {
    const claims = await this.claims(request);
    const { grants } = claims;
    const adminOf = (name: string | undefined): boolean =>
      grants.roomAdmin === true && (claims.room === undefined || claims.room === name);
    switch (rule.grant) {
      case 'roomCreate':
      case 'roomList':
        if (grants[rule.grant] !== true) throw missing(rule.grant);
        return claims;
      case 'roomAdmin':
        if (!adminOf(room)) throw missing('roomAdmin', room);
        return claims;
      case 'roomListOrAdmin':
        if (grants.roomList !== true && !adminOf(room)) throw missing('roomList', room);
        return claims;
    }
  }
}

function missing(grant: GrantName, room?: string): ChorusError {
  const where = room === undefined ? '' : ` for room ${room}`;
  const also = grant === 'roomList' && room !== undefined ? ' (or roomAdmin)' : '';
  return new ChorusError('forbidden', `token lacks the ${grant} grant${also}${where}`, { grant });
}
