import type { FastifyRequest } from 'fastify';
import { ChorusError } from '../../core/errors.js';
import type { ChallengeBook, TicketUse } from './challenge-book.js';
import { parsePublicKey, verifyChallenge, type PublicKey } from './pkey.js';
import type { SideSite } from './side-site.js';

/** A request's form: query string merged with an urlencoded or multipart body. */
export type Form = Record<string, string | undefined>;

export interface Caller {
  /** The user id on the wire: the site's integer as text, or the compressed key hex. */
  id: string;
  /** Side-site mode: the token, for the site's per-action checks. */
  token?: string;
  key?: PublicKey;
}

export function form(request: FastifyRequest): Form {
  const out: Form = {};
  const add = (src: unknown) => {
    if (!src || typeof src !== 'object') return;
    for (const [k, v] of Object.entries(src as Record<string, unknown>)) {
      if (typeof v === 'string') out[k] = v;
      else if (Array.isArray(v) && typeof v[0] === 'string') out[k] = v[0];
    }
  };
  // Go's FormValue prefers the body over the query string.
  add(request.query);
  add(request.body);
  return out;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Who is asking, in either identity mode. Side site: the `CSRFToken` header (or the
 * form's `token` / `CSRFtoken`) resolved by the site. Standalone: the `PKey` header
 * (or form value); when `use` is given, the form's `Signature` must sign the key's
 * current server ticket, which is then spent for that use.
 */
export class VoipAuth {
  constructor(
    readonly mode: 'site' | 'key',
    private readonly site: SideSite | undefined,
    private readonly challenges: ChallengeBook,
  ) {}

  async caller(request: FastifyRequest, f: Form, use?: TicketUse): Promise<Caller> {
    if (this.mode === 'site') {
      const token = header(request, 'CSRFToken') ?? f.token ?? f.CSRFtoken ?? f.CSRFToken;
      if (!token) throw new ChorusError('unauthenticated', 'mysite.checkCRSF API error');
      const user = await this.site!.userOf(token);
      if (user === undefined) throw new ChorusError('unauthenticated', 'mysite.checkCRSF API error');
      return { id: String(user), token };
    }
    const key = parsePublicKey(header(request, 'PKey') ?? f.PKey);
    if (!key) throw new ChorusError('unauthenticated', 'bad PKey');
    if (use) {
      const ticket = this.challenges.ticketFor(key.id, use);
      const signature = f.Signature ?? f.signature;
      if (!ticket || !verifyChallenge(key, ticket, signature))
        throw new ChorusError('unauthenticated', 'bad signature');
      this.challenges.spend(key.id, ticket, use);
    }
    return { id: key.id, key };
  }

  /**
   * Whether `caller` (standalone) proved its key with `signature` over the key's current
   * server ticket. The ticket is not spent: this proves ownership to read, nothing more.
   */
  provesKey(caller: Caller, signature: string | undefined): boolean {
    if (!caller.key || !signature) return false;
    const ticket = this.challenges.currentTicket(caller.key.id);
    return ticket !== undefined && verifyChallenge(caller.key, ticket, signature);
  }

  /** The other party named by a form field: a user id or a compressed key. */
  party(raw: string | undefined, what: string): string {
    if (this.mode === 'site') {
      if (!raw || !/^[0-9]{1,15}$/.test(raw) || Number(raw) <= 0)
        throw new ChorusError('invalid_argument', `bad ${what}`);
      return String(Number(raw));
    }
    const key = parsePublicKey(raw);
    if (!key) throw new ChorusError('invalid_argument', `bad ${what}`);
    return key.id;
  }
}
