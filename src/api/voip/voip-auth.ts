import type { FastifyRequest } from 'fastify';
import type { TicketUse } from './challenge-book.js';
import type { PublicKey } from './pkey.js';
import type { RoomRef } from './voip-rooms.js';
import type { EventFields, EventName } from './voip-wire.js';
import type { Form } from './form.js';

export interface Caller {
  /** The user id on the wire: the site's integer as text, or the compressed key hex. */
  id: string;
  /** Side-site mode: the token, for the site's per-action checks. */
  token?: string;
  key?: PublicKey;
}

/** The handshake steps that carry a signature (standalone) or a site check (side site). */
export type Decision = 'acceptCall' | 'rejectCall';
export type Relay = 'answer' | 'answer2';

/**
 * Everything the surface's two identity modes do differently, chosen once when the
 * surface is built: `SiteAuth` (a side site vouches for callers by token and allows each
 * call and room) or `KeyAuth` (callers are P-256 keys proving themselves with signed
 * challenges). Routes call these at the points where the original's two modes part, in
 * the original's order, so each answer stays what it was.
 */
export interface VoipAuth {
  /** For the ready log line. */
  readonly mode: 'site' | 'key';
  /** CORS headers every answer carries, in this order. */
  readonly corsHeaders: readonly (readonly [string, string])[];
  /** What a bad `Destination` (`/newCall`) and `From` (`/acceptCall`, `/rejectCall`) are called. */
  readonly labels: { readonly destination: string; readonly from: string };

  /**
   * Who is asking. Side site: the `CSRFToken` header (or the form's `token` /
   * `CSRFtoken`) resolved by the site. Standalone: the `PKey` header (or form value);
   * when `use` is given, the form's `Signature` must sign the key's current server
   * ticket, which is then spent for that use.
   */
  caller(request: FastifyRequest, f: Form, use?: TicketUse): Promise<Caller>;
  /** The other party named by a form field: a user id or a compressed key. */
  party(raw: string | undefined, what: string): string;
  /**
   * Whether `me` may have missed events replayed on its stream: the site's token says
   * who owns a stream; a key must sign its current ticket (the form's `Signature`).
   */
  ownsStream(me: Caller, f: Form): Promise<boolean>;
  /** An event's `data:` in the mode's encoding. */
  eventData(name: EventName, fields: EventFields): string;

  /** Throws `not_found` for the routes of the standalone handshake in side-site mode. */
  requireKeys(what: string): void;
  /** A fresh server ticket for `me` (`/getCallTicket`). */
  issueTicket(me: Caller): Promise<string>;
  /**
   * `/newCall`, before the call rings: checks `me` may call `dest` and returns what the
   * callee's `newCall` event carries besides `from`.
   */
  offerCall(me: Caller, dest: string, f: Form): Promise<Pick<EventFields, 'challenge'>>;
  /** `/newCall`'s body once the call rings: empty, or the caller's next ticket. */
  callPlaced(me: Caller): Promise<string>;
  /** `/answer`, `/answer2`: `me`'s signature over `peer`'s challenge and a new challenge. */
  relay(name: Relay, me: Caller, peer: string, f: Form): Promise<{ answer: string; challenge: string }>;
  /** `/acceptCall`, `/rejectCall` of a ringing call: the `answer` the caller is sent. */
  decide(name: Decision, me: Caller, caller: string, f: Form): Promise<string>;

  /** The room a media route names (`roomID`), once `me` may use `slot` in it. */
  roomKey(raw: string | undefined, me: Caller, slot: 'mic' | 'hds'): Promise<number | string>;
  /** The key that finds `room` again (by id on the side site, by name standalone). */
  keyOf(room: RoomRef): number | string;
  /** `me` stopped sending or listening in `room` (the side site's `/0` calls). */
  leftRoom(room: RoomRef, me: Caller, slot: 'mic' | 'hds'): void;
}
