import type { FastifyRequest } from 'fastify';
import { ChorusError } from '../../core/errors.js';
import type { ChallengeBook, TicketUse } from './challenge-book.js';
import { header, type Form } from './form.js';
import { parsePublicKey, verifyChallenge } from './pkey.js';
import type { Caller, Decision, Relay, VoipAuth } from './voip-auth.js';
import type { RoomRef } from './voip-rooms.js';
import { keyEventData, type EventFields, type EventName } from './voip-wire.js';

/**
 * Standalone mode: a user is a P-256 public key. It proves itself to the server by
 * signing server tickets, and to its peer by signing the challenges the peer sent it
 * through the server (the handshake's c1, c2, c3); see ChallengeBook. Rooms are named.
 */
export class KeyAuth implements VoipAuth {
  readonly mode = 'key';
  readonly corsHeaders = [
    ['Access-Control-Allow-Origin', '*'],
    ['Access-Control-Allow-Headers', 'PKey,CSRFToken,Last-Event-ID,Content-Type'],
  ] as const;
  readonly labels = { destination: 'Destination', from: 'From' };

  constructor(private readonly challenges: ChallengeBook) {}

  async caller(request: FastifyRequest, f: Form, use?: TicketUse): Promise<Caller> {
    const key = parsePublicKey(header(request, 'PKey') ?? f.PKey);
    if (!key) throw new ChorusError('unauthenticated', 'bad PKey');
    if (use) {
      const signature = f.Signature ?? f.signature;
      const spent = await this.challenges.spendTicket(key.id, use, (ticket) =>
        verifyChallenge(key, ticket, signature),
      );
      if (!spent) throw new ChorusError('unauthenticated', 'bad signature');
    }
    return { id: key.id, key };
  }

  party(raw: string | undefined, what: string): string {
    const key = parsePublicKey(raw);
    if (!key) throw new ChorusError('invalid_argument', `bad ${what}`);
    return key.id;
  }

  /**
   * Anyone who knows a key can open its stream (as in the original), so only a reader
   * whose `Signature` signs the key's current server ticket owns it. The ticket is not
   * spent: this proves ownership to read, nothing more.
   */
  async ownsStream(me: Caller, f: Form): Promise<boolean> {
    const signature = f.Signature ?? f.signature;
    if (!me.key || !signature) return false;
    const ticket = await this.challenges.currentTicket(me.key.id);
    return ticket !== undefined && verifyChallenge(me.key, ticket, signature);
  }

  eventData(name: EventName, fields: EventFields): string {
    return keyEventData(name, fields);
  }

  requireKeys(): void {}

  issueTicket(me: Caller): Promise<string> {
    return this.challenges.issueTicket(me.id);
  }

  async offerCall(me: Caller, dest: string, f: Form): Promise<Pick<EventFields, 'challenge'>> {
    const challenge = challengeOf(f.challenge);
    await this.challenges.expect(dest, me.id, challenge);
    return { challenge };
  }

  callPlaced(me: Caller): Promise<string> {
    return this.challenges.issueTicket(me.id);
  }

  async relay(
    name: Relay,
    me: Caller,
    peer: string,
    f: Form,
  ): Promise<{ answer: string; challenge: string }> {
    const answer = await this.proveTo(me, peer, f.signature, `bad ${name} signature`);
    const challenge = challengeOf(f.challenge);
    await this.challenges.expect(peer, me.id, challenge);
    return { answer, challenge };
  }

  async decide(name: Decision, me: Caller, caller: string, f: Form): Promise<string> {
    return this.proveTo(me, caller, f.signature, `bad ${name.toLowerCase()} signature`);
  }

  async roomKey(raw: string | undefined): Promise<string> {
    if (!raw || raw.length < 3 || raw.length > 64 || /\p{Cc}/u.test(raw))
      throw new ChorusError('invalid_argument', 'bad roomName');
    return raw;
  }

  keyOf(room: RoomRef): string {
    return room.name;
  }

  /** No one to tell. */
  leftRoom(): void {}

  /**
   * Checks that `me` signed the challenge `peer` sent it in this exchange; the
   * challenge is used up by a valid signature, and kept after an invalid one.
   */
  private async proveTo(
    me: Caller,
    peer: string,
    signature: string | undefined,
    refusal: string,
  ): Promise<string> {
    const challenge = await this.challenges.take(me.id, peer);
    if (challenge === undefined) throw new ChorusError('unauthenticated', refusal);
    if (!me.key || !verifyChallenge(me.key, challenge, signature)) {
      await this.challenges.restore(me.id, peer, challenge);
      throw new ChorusError('unauthenticated', refusal);
    }
    return signature!.toLowerCase();
  }
}

/** A client-chosen challenge: 1-128 printable characters (the original allowed empty). */
function challengeOf(raw: string | undefined): string {
  if (!raw || raw.length > 128 || !/^[\x21-\x7e]+$/.test(raw))
    throw new ChorusError('invalid_argument', 'bad challenge');
  return raw;
}
