import type { Logger } from 'pino';
import { ChorusError } from '../../core/errors.js';

export interface SideSiteOptions {
  baseUrl: string;
  timeoutMs: number;
  cacheSeconds: number;
  log: Logger;
}

/**
 * The side site's API (side-site mode), over real HTTP with a timeout on every call.
 * Successful answers are cached briefly per path, so a page making ten requests does
 * not cost ten round trips; failures are never cached. Tokens are part of the paths
 * and are validated (`[a-zA-Z0-9]+`) before any request is made. A site that does not
 * answer (down, slow, unreachable) is an `unavailable` error: the client gets a 503.
 */
export class SideSite {
  private readonly cache = new Map<string, { value: number; expires: number }>();

  constructor(private readonly opts: SideSiteOptions) {}

  /** The user id a token belongs to; undefined when the site says it is not valid. */
  async userOf(token: string): Promise<number | undefined> {
    if (!isToken(token)) return undefined;
    const n = await this.ask(`/Membres/crossLogin/${token}`);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  }

  async mayCall(destination: number, token: string): Promise<boolean> {
    if (!isToken(token)) return false;
    return (await this.ask(`/Membres/peuxAppeller/${destination}/${token}`)) === 1;
  }

  /** Asks (on) or tells (off) the site about sending audio to a room. */
  async sendToRoom(room: number, token: string, on: boolean): Promise<boolean> {
    if (!isToken(token)) return false;
    return (await this.ask(`/Groupes/envoieAudioGroup/${room}/${token}/${on ? 1 : 0}`, on)) === 1;
  }

  async listenToRoom(room: number, token: string, on: boolean): Promise<boolean> {
    if (!isToken(token)) return false;
    return (await this.ask(`/Groupes/ecouteAudioGroup/${room}/${token}/${on ? 1 : 0}`, on)) === 1;
  }

  /** Fire-and-forget notice (the `/0` calls): failures are logged, never thrown. */
  notify(call: Promise<unknown>, what: string): void {
    call.catch((err: unknown) => this.opts.log.warn({ err, what }, 'side site notice failed'));
  }

  private async ask(path: string, cacheable = true): Promise<number> {
    const now = Date.now();
    const hit = cacheable ? this.cache.get(path) : undefined;
    if (hit && hit.expires > now) return hit.value;
    let text: string;
    try {
      const res = await fetch(new URL(path, this.opts.baseUrl), {
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      this.opts.log.warn({ err, path: redact(path) }, 'side site unavailable');
      // A clear 503 for the client: the site's own error is in the line above.
      throw new ChorusError('unavailable', 'side site unavailable', { path: redact(path) });
    }
    // The original parses the body as an integer and ignores the status.
    const value = /^\s*-?\d+\s*$/.test(text) ? Number(text.trim()) : Number.NaN;
    if (cacheable && this.opts.cacheSeconds > 0 && !Number.isNaN(value)) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(path, { value, expires: now + this.opts.cacheSeconds * 1000 });
    }
    return value;
  }
}

const TOKEN = /^[a-zA-Z0-9]{1,256}$/;
export const isToken = (t: string): boolean => TOKEN.test(t);

/** Paths carry tokens: logs get the route without them. */
function redact(path: string): string {
  return path.replace(/\/[a-zA-Z0-9]{8,}(?=\/|$)/g, '/…');
}
