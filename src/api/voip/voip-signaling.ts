import { ChorusError } from '../../core/errors.js';
import type { ChallengeBook } from './challenge-book.js';
import type { EventHub } from './event-hub.js';
import { verifyChallenge } from './pkey.js';
import type { Caller } from './voip-auth.js';
import { keyEventData, siteEventData, type EventFields, type EventName } from './voip-wire.js';

/** Sends events in the mode's encoding, and checks the handshake's signatures. */
export class VoipSignaling {
  constructor(
    private readonly mode: 'site' | 'key',
    private readonly events: EventHub,
  ) {}

  readonly notify = (to: string, name: EventName, fields: EventFields): void => {
    this.events.send(
      to,
      name,
      this.mode === 'site' ? siteEventData(name, fields) : keyEventData(name, fields),
    );
  };

  /** A client-chosen challenge: 1-128 printable characters (the original allowed empty). */
  challengeOf(raw: string | undefined): string {
    if (!raw || raw.length > 128 || !/^[\x21-\x7e]+$/.test(raw))
      throw new ChorusError('invalid_argument', 'bad challenge');
    return raw;
  }

  /**
   * Checks that `me` signed the challenge `peer` sent it in this exchange; the
   * challenge is used up by a valid signature, and kept after an invalid one.
   */
  proveTo(
    book: ChallengeBook,
    me: Caller,
    peer: string,
    signature: string | undefined,
    refusal: string,
  ): string {
    const challenge = book.take(me.id, peer);
    if (challenge === undefined) throw new ChorusError('unauthenticated', refusal);
    if (!me.key || !verifyChallenge(me.key, challenge, signature)) {
      book.restore(me.id, peer, challenge);
      throw new ChorusError('unauthenticated', refusal);
    }
    return signature!.toLowerCase();
  }
}
