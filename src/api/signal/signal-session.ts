import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { IdentityRecord, IdentityRegistry } from '../../core/identity-registry.js';
import { asUserId, type UserId } from '../../core/ids.js';
import { COOKIE_NAME } from './signal-wire.js';

/**
 * The signed, HttpOnly session cookie: `<name>.<signature>`. Scripts cannot read it, so
 * the name itself goes in a second cookie the seed's web app reads (`user_username`).
 */
export const SESSION_COOKIE = 'chorus_session';
/**
 * The bare name, readable by scripts (`document.cookie`), as the original set it. It
 * authenticates nothing; before `chorus_session` it held the signed session, which is
 * still accepted so that existing sessions keep working.
 */
export const USERNAME_COOKIE = COOKIE_NAME;

export interface Session {
  user: UserId;
  record: IdentityRecord;
}

/** The HMAC (cookie secret) of the name and its registration time. */
function signatureOf(signer: Pick<CookieSigner, 'signCookie'>, user: string, record: IdentityRecord): string {
  const signed = signer.signCookie(`${user}|${record.registeredAt}`);
  return signed.slice(signed.lastIndexOf('.') + 1);
}

/**
 * The session cookie's value: `<name>.<signature>`, as before, but the signature also
 * covers the registration, so once a name has expired and been registered again by
 * someone else, the old holder's cookie no longer opens it.
 */
export function sessionCookieValue(
  signer: Pick<CookieSigner, 'signCookie'>,
  user: UserId,
  record: IdentityRecord,
): string {
  return `${user}.${signatureOf(signer, user, record)}`;
}

/** What signs and checks cookies: a Fastify request, or the app itself (outside a request). */
export type CookieSigner = Pick<FastifyRequest, 'signCookie' | 'unsignCookie'>;

/** A request's cookies, parsed (`request.cookies`, or the app's `parseCookie` of the header). */
export type Cookies = Record<string, string | undefined>;

/**
 * The registered user the request's session cookie names, with its record; undefined
 * when there is no cookie, it is forged, or it belongs to an earlier registration.
 * `legacy` says the session came in the old cookie (`user_username=<name>.<signature>`).
 */
export async function sessionOf(
  request: FastifyRequest,
  identities: IdentityRegistry,
): Promise<(Session & { legacy: boolean }) | undefined> {
  return sessionOfCookies(request.cookies, request, identities);
}

/** sessionOf, from parsed cookies: for an upgrade taken before Fastify's lifecycle. */
export async function sessionOfCookies(
  cookies: Cookies,
  signer: CookieSigner,
  identities: IdentityRegistry,
): Promise<(Session & { legacy: boolean }) | undefined> {
  const current = cookies[SESSION_COOKIE];
  const found = current ? await verifiedSession(signer, identities, current) : undefined;
  if (found) return { ...found, legacy: false };
  const old = cookies[USERNAME_COOKIE];
  // Today that cookie holds the bare name, whose "signature" never verifies.
  const legacy = old ? await verifiedSession(signer, identities, old) : undefined;
  return legacy ? { ...legacy, legacy: true } : undefined;
}

async function verifiedSession(
  signer: CookieSigner,
  identities: IdentityRegistry,
  raw: string,
): Promise<Session | undefined> {
  const dot = raw.lastIndexOf('.');
  // Names are letters, digits, `_`, `-`, `.`; nothing else is worth a store lookup.
  if (dot <= 0 || dot > 256 || !/^[A-Za-z0-9_.-]+$/.test(raw.slice(0, dot))) return undefined;
  const user = asUserId(raw.slice(0, dot));
  const record = await identities.get(user);
  if (!record) return undefined;
  if (record.bound) {
    const given = Buffer.from(raw.slice(dot + 1));
    const expected = Buffer.from(signatureOf(signer, user, record));
    return given.length === expected.length && timingSafeEqual(given, expected)
      ? { user, record }
      : undefined;
  }
  // A name registered before sessions were bound: its cookie signs the bare name.
  const unsigned = signer.unsignCookie(raw);
  return unsigned.valid && unsigned.value === user ? { user, record } : undefined;
}

/**
 * The registered user of a valid session cookie, marked used now (at most every
 * `touchEveryMs`).
 */
export async function signedInUser(
  cookies: Cookies,
  signer: CookieSigner,
  identities: IdentityRegistry,
  touchEveryMs: number,
): Promise<UserId | undefined> {
  const session = await sessionOfCookies(cookies, signer, identities);
  if (!session) return undefined;
  await identities.touch(session.user, session.record, touchEveryMs);
  return session.user;
}
