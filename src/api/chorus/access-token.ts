import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { ChorusError } from '../../core/errors.js';

/** Where a published track may come from (`canPublishSources`). */
export const trackSources = ['camera', 'microphone', 'screen'] as const;

/** A room's name as applications choose it; it is also a store key and a bus subject token. */
export const roomName = z
  .string()
  .regex(/^[A-Za-z0-9_.~-]{1,128}$/, { error: 'expected 1-128 characters: letters, digits, _ . ~ -' });

/** An identity (a participant's id within a room). */
export const identity = z
  .string()
  .regex(/^[^\p{Cc}]{1,256}$/u, { error: 'expected 1-256 characters, no control characters' });

/**
 * What a token lets its bearer do. Room grants (`roomJoin`, `canPublish`, ...) apply to
 * the token's `room`; `roomAdmin` to that room too, or to every room when the token names
 * none (a server's own token); `roomCreate` and `roomList` to the room service as a whole.
 */
export const grantsSchema = z
  .object({
    roomJoin: z.boolean().optional(),
    canPublish: z.boolean().optional(),
    canSubscribe: z.boolean().optional(),
    canPublishData: z.boolean().optional(),
    /** Sources `canPublish` covers; absent: all of them. */
    canPublishSources: z.array(z.enum(trackSources)).max(trackSources.length).optional(),
    roomAdmin: z.boolean().optional(),
    roomCreate: z.boolean().optional(),
    roomList: z.boolean().optional(),
  })
  .strict();
export type Grants = z.infer<typeof grantsSchema>;
export type GrantName = Exclude<keyof Grants, 'canPublishSources'>;

/** The claims Chorus reads from an access token (standard ones checked by jose first). */
const claimsSchema = z.object({
  sub: identity.optional(),
  name: z.string().max(256).optional(),
  metadata: z.string().max(4096).optional(),
  room: roomName.optional(),
  grants: grantsSchema,
  exp: z.number(),
});

export interface AccessClaims {
  /** The API key that signed the token (`kid`). */
  key: string;
  identity: string | undefined;
  name: string | undefined;
  metadata: string | undefined;
  room: string | undefined;
  grants: Grants;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export interface TokenRequest {
  identity?: string;
  name?: string;
  metadata?: string;
  room?: string;
  grants: Grants;
  /** Lifetime in seconds. */
  ttlSeconds: number;
  /** Not valid before this many seconds from now (default: valid at once). */
  notBeforeSeconds?: number;
}

const encoder = new TextEncoder();

/** An HS256 access token signed by `key`'s `secret`, naming the key in its `kid` header. */
export async function createAccessToken(key: string, secret: string, req: TokenRequest): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({
    grants: grantsSchema.parse(req.grants),
    ...(req.name === undefined ? {} : { name: req.name }),
    ...(req.metadata === undefined ? {} : { metadata: req.metadata }),
    ...(req.room === undefined ? {} : { room: roomName.parse(req.room) }),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: key })
    .setIssuer(key)
    .setIssuedAt(now)
    .setNotBefore(now + (req.notBeforeSeconds ?? 0))
    .setExpirationTime(now + req.ttlSeconds);
  if (req.identity !== undefined) jwt.setSubject(identity.parse(req.identity));
  return jwt.sign(encoder.encode(secret));
}

const refuse = (message: string): ChorusError => new ChorusError('unauthenticated', message);

/**
 * The API keys a server accepts (`CHORUS_API_KEYS`, `key:secret` pairs), and the check of
 * a token against them: each refusal says why (expired, wrong key, bad signature), so a
 * developer can fix their token server; none says anything about the secrets.
 */
export class ApiKeys {
  private readonly secrets = new Map<string, Uint8Array>();
  /** The first pair, for what the server signs itself (webhooks). */
  readonly first: { key: string; secret: string } | undefined;

  constructor(pairs: readonly string[]) {
    let first: { key: string; secret: string } | undefined;
    for (const pair of pairs) {
      const at = pair.indexOf(':');
      const key = pair.slice(0, at);
      const secret = pair.slice(at + 1);
      this.secrets.set(key, encoder.encode(secret));
      first ??= { key, secret };
    }
    this.first = first;
  }

  get size(): number {
    return this.secrets.size;
  }

  /** The claims of a valid token; ChorusError `unauthenticated` saying what is wrong otherwise. */
  async verify(token: string): Promise<AccessClaims> {
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw refuse('malformed token: expected a JWT');
    }
    if (typeof kid !== 'string' || kid === '')
      throw refuse('token has no kid header (the API key that signed it)');
    const secret = this.secrets.get(kid);
    if (!secret) throw refuse('token signed with an unknown API key');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], requiredClaims: ['exp'] }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw refuse('token expired');
      if (err instanceof errors.JWTClaimValidationFailed) {
        if (err.claim === 'nbf') throw refuse('token not valid yet (nbf)');
        if (err.claim === 'exp') throw refuse('token has no exp');
        throw refuse(`token claim ${err.claim} is invalid`);
      }
      if (err instanceof errors.JWSSignatureVerificationFailed)
        throw refuse('token signature does not match its key');
      if (err instanceof errors.JOSEAlgNotAllowed) throw refuse('token must be signed with HS256');
      throw refuse('malformed token');
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) throw refuse(`token claims are invalid: ${claims.error.issues[0]?.message ?? ''}`);
    const c = claims.data;
    return {
      key: kid,
      identity: c.sub,
      name: c.name,
      metadata: c.metadata,
      room: c.room,
      grants: c.grants,
      exp: c.exp,
    };
  }
}
