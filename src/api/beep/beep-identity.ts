import type { FastifyRequest } from 'fastify';
import { errors, jwtVerify } from 'jose';
import { ChorusError } from '../../core/errors.js';
import { IpMatcher, normalizeIp } from '../../lib/ip-matcher.js';

/** Who is calling: a user and one of their clients (devices). */
export interface Claim {
  userid: string;
  clientid: string;
}

/** 1-256 characters, no control characters and no `/` (ids go into permission URLs). */
const ID = /^[^\p{Cc}/]{1,256}$/u;

function asClaim(v: unknown): Claim | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const { userid, clientid } = v as Record<string, unknown>;
  if (typeof userid !== 'string' || typeof clientid !== 'string') return undefined;
  return ID.test(userid) && ID.test(clientid) ? { userid, clientid } : undefined;
}

/**
 * The caller, as Beep's backend-auth hands it over: the `X-User-Claim` header, JSON
 * `{"userid","clientid"}`, believed only from trusted proxies (anyone can send a
 * header); or, with a secret configured, a `?token=` HS256 JWT carrying the same claims.
 */
export class BeepIdentity {
  private readonly trusted: IpMatcher;
  private readonly secret: Uint8Array | undefined;

  /**
   * @param maxLifetimeSeconds the longest a token may be valid: `exp` at most this far
   *   from now and, when the token has one, from its `iat`.
   */
  constructor(
    trustedProxies: readonly string[],
    tokenSecret: string | undefined,
    private readonly maxLifetimeSeconds: number,
  ) {
    this.trusted = new IpMatcher(trustedProxies);
    this.secret = tokenSecret ? new TextEncoder().encode(tokenSecret) : undefined;
  }

  async claimOf(request: FastifyRequest): Promise<Claim> {
    const token = (request.query as Record<string, unknown> | undefined)?.token;
    if (this.secret && typeof token === 'string' && token !== '') {
      let payload;
      try {
        // A token without `exp` would open the door forever to whoever saw it once.
        ({ payload } = await jwtVerify(token, this.secret, {
          algorithms: ['HS256'],
          requiredClaims: ['exp'],
        }));
      } catch (err) {
        if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'exp' && err.reason === 'missing')
          throw new ChorusError('unauthenticated', 'invalid token: exp is required');
        throw new ChorusError('unauthenticated', 'invalid token');
      }
      const now = Math.floor(Date.now() / 1000);
      const exp = payload.exp!;
      if (
        exp - now > this.maxLifetimeSeconds ||
        (payload.iat !== undefined && exp - payload.iat > this.maxLifetimeSeconds)
      )
        throw new ChorusError(
          'unauthenticated',
          `invalid token: valid for more than ${this.maxLifetimeSeconds} s`,
        );
      const claim = asClaim(payload);
      if (claim) return claim;
      throw new ChorusError('unauthenticated', 'invalid token');
    }
    const header = request.headers['x-user-claim'];
    if (typeof header !== 'string' || header === '')
      throw new ChorusError('invalid_argument', 'Error parsing X-User-Claims header');
    // The socket's own address: X-Forwarded-For is exactly what an attacker would forge.
    const peer = normalizeIp(request.socket.remoteAddress ?? '');
    if (!this.trusted.matches(peer))
      throw new ChorusError('forbidden', 'X-User-Claim is not accepted from this address');
    let parsed: unknown;
    try {
      parsed = JSON.parse(header);
    } catch {
      throw new ChorusError('invalid_argument', 'Error parsing X-User-Claims header');
    }
    const claim = asClaim(parsed);
    if (!claim) throw new ChorusError('invalid_argument', 'Error parsing X-User-Claims header');
    return claim;
  }
}
