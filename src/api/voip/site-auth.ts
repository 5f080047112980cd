import type { FastifyRequest } from 'fastify';
import { ChorusError } from '../../core/errors.js';
import { header, type Form } from './form.js';
import type { SideSite } from './side-site.js';
import type { Caller, Decision, Relay, VoipAuth } from './voip-auth.js';
import type { RoomRef } from './voip-rooms.js';
import { siteEventData, type EventFields, type EventName } from './voip-wire.js';

/**
 * Side-site mode: a user is the site's integer id, a caller proves who it is with the
 * site's token, and the site allows each call and each room's mic and headset. There
 * are no tickets and no signatures: the standalone handshake's routes answer 404.
 */
export class SiteAuth implements VoipAuth {
  readonly mode = 'site';
  readonly corsHeaders: readonly (readonly [string, string])[];
  readonly labels = { destination: 'destination id', from: 'From id' };

  constructor(
    private readonly site: SideSite,
    origin: string,
  ) {
    // The site's pages send their cookies: an exact origin, never `*`.
    this.corsHeaders = [
      ['Access-Control-Allow-Origin', origin],
      ['Access-Control-Allow-Credentials', 'true'],
      ['Vary', 'Origin'],
      ['Access-Control-Allow-Headers', 'PKey,CSRFToken,Last-Event-ID,Content-Type'],
    ];
  }

  async caller(request: FastifyRequest, f: Form): Promise<Caller> {
    const token = header(request, 'CSRFToken') ?? f.token ?? f.CSRFtoken ?? f.CSRFToken;
    if (!token) throw new ChorusError('unauthenticated', 'mysite.checkCRSF API error');
    const user = await this.site.userOf(token);
    if (user === undefined) throw new ChorusError('unauthenticated', 'mysite.checkCRSF API error');
    return { id: String(user), token };
  }

  party(raw: string | undefined, what: string): string {
    if (!raw || !/^[0-9]{1,15}$/.test(raw) || Number(raw) <= 0)
      throw new ChorusError('invalid_argument', `bad ${what}`);
    return String(Number(raw));
  }

  /** The site's token said whose stream it is. */
  async ownsStream(): Promise<boolean> {
    return true;
  }

  eventData(name: EventName, fields: EventFields): string {
    return siteEventData(name, fields);
  }

  requireKeys(what: string): never {
    throw new ChorusError('not_found', `no ${what} in side-site mode`);
  }

  issueTicket(): never {
    return this.requireKeys('tickets');
  }

  async offerCall(me: Caller, dest: string): Promise<Pick<EventFields, 'challenge'>> {
    if (!(await this.site.mayCall(Number(dest), me.token!)))
      throw new ChorusError('forbidden', 'mysite.checkAppel API error');
    return {};
  }

  async callPlaced(): Promise<string> {
    return '';
  }

  relay(name: Relay): never {
    return this.requireKeys(name);
  }

  async decide(name: Decision, me: Caller, caller: string): Promise<string> {
    // The original asked this before parsing From, so always about user 0.
    if (name === 'acceptCall' && !(await this.site.mayCall(Number(caller), me.token!)))
      throw new ChorusError('forbidden', 'mysite.checkAppel API error');
    return '';
  }

  async roomKey(raw: string | undefined, me: Caller, slot: 'mic' | 'hds'): Promise<number> {
    if (!raw || !/^[0-9]{1,9}$/.test(raw)) throw new ChorusError('invalid_argument', 'bad room id');
    const ok = await (slot === 'mic'
      ? this.site.sendToRoom(Number(raw), me.token!, true)
      : this.site.listenToRoom(Number(raw), me.token!, true));
    if (!ok)
      throw new ChorusError(
        'forbidden',
        slot === 'mic' ? 'mysite.newInput API error' : 'mysite.newListener API error',
      );
    return Number(raw);
  }

  keyOf(room: RoomRef): number {
    return room.id;
  }

  leftRoom(room: RoomRef, me: Caller, slot: 'mic' | 'hds'): void {
    if (!me.token) return;
    const call =
      slot === 'mic'
        ? this.site.sendToRoom(room.id, me.token, false)
        : this.site.listenToRoom(room.id, me.token, false);
    this.site.notify(call, slot === 'mic' ? 'envoieAudioGroup/0' : 'ecouteAudioGroup/0');
  }
}
