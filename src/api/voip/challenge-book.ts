import type { KvBucket, Store } from '../../ports/store/store.js';
import { newChallenge } from './pkey.js';
import { storeKey } from './store-key.js';

/** Media routes a server ticket may authorize, each at most once per ticket. */
export type TicketUse = 'newCall' | 'upCall' | 'joinCall' | 'upRoom' | 'joinRoom';

interface Ticket {
  value: string;
  /** 0: spent entirely (by `/newCall`). */
  expires: number;
  used: TicketUse[];
}

interface PeerChallenge {
  value: string;
  /** 0: taken. */
  expires: number;
}

/** How long a dead record stays before a sweep deletes it (see `sweep`). */
const SWEEP_GRACE_MS = 60_000;
const SWEEP_PAGE = 256;

/**
 * Challenge state of the standalone handshake, keyed by the full key (the original
 * used the MD5 of the key) and fixing the original's weaknesses: challenges expire, are
 * never empty, and are single-use; a peer challenge is bound to the pair it was issued
 * for, so a signature made for one call cannot be replayed in another.
 *
 * - Server tickets (`/getCallTicket`, and the fresh one `/newCall` returns) prove key
 *   possession to the server. A ticket authorizes one `/newCall` (which consumes it)
 *   and one session of each media route.
 * - Peer challenges are chosen by one party for the other (c1, c2, c3) and must be
 *   signed by the party they were sent to, in the call with that peer.
 *
 * Both live in the store, so a ticket issued by one node verifies on any other. Every
 * use is a compare-and-set on the record's revision: of two nodes spending one ticket
 * for the same use (or taking one peer challenge) at the same instant, exactly one wins.
 */
export class ChallengeBook {
  private readonly tickets: KvBucket<Ticket>;
  private readonly peer: KvBucket<PeerChallenge>;

  constructor(
    store: Store,
    private readonly ticketTtlMs: number,
    private readonly challengeTtlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tickets = store.bucket<Ticket>('voip-tickets');
    this.peer = store.bucket<PeerChallenge>('voip-challenges');
  }

  async issueTicket(key: string): Promise<string> {
    const value = newChallenge();
    await this.tickets.put(storeKey(key), { value, expires: this.now() + this.ticketTtlMs, used: [] });
    return value;
  }

  /**
   * Spends `key`'s current ticket for `use` if `verify` accepts it (the caller checks a
   * signature over it): true once per ticket and use, cluster-wide. `newCall` spends the
   * whole ticket.
   */
  async spendTicket(key: string, use: TicketUse, verify: (ticket: string) => boolean): Promise<boolean> {
    const k = storeKey(key);
    const e = await this.tickets.entry(k);
    if (!e || e.value.expires <= this.now() || e.value.used.includes(use)) return false;
    if (!verify(e.value.value)) return false;
    const spent: Ticket =
      use === 'newCall' ? { ...e.value, expires: 0 } : { ...e.value, used: [...e.value.used, use] };
    // Someone spent or replaced it since we read it: that one won.
    return this.tickets.update(k, spent, e.revision);
  }

  /** `key`'s current ticket whatever it was used for, if not expired (read-only proofs). */
  async currentTicket(key: string): Promise<string | undefined> {
    const t = await this.tickets.get(storeKey(key));
    return t && t.expires > this.now() ? t.value : undefined;
  }

  /** Records the challenge `signer` must sign next in its exchange with `peer`. */
  async expect(signer: string, peer: string, challenge: string): Promise<void> {
    await this.peer.put(pairKey(signer, peer), {
      value: challenge,
      expires: this.now() + this.challengeTtlMs,
    });
  }

  /** Takes (single use, cluster-wide) the challenge `signer` owes `peer`; undefined if none or expired. */
  async take(signer: string, peer: string): Promise<string | undefined> {
    const k = pairKey(signer, peer);
    const e = await this.peer.entry(k);
    if (!e || e.value.expires <= this.now()) return undefined;
    if (!(await this.peer.update(k, { value: '', expires: 0 }, e.revision))) return undefined;
    return e.value.value;
  }

  /** Puts back a challenge whose signature failed, so a typo does not kill the call. */
  restore(signer: string, peer: string, challenge: string): Promise<void> {
    return this.expect(signer, peer, challenge);
  }

  /**
   * Deletes records dead (expired, spent or taken) for over a minute, a page at a time,
   * so the buckets stay bounded by recent activity. Any node may run it; a record
   * written again between the read and the delete stays (the delete is conditional).
   */
  async sweep(): Promise<void> {
    const before = this.now() - SWEEP_GRACE_MS;
    for (const bucket of [this.tickets, this.peer] as KvBucket<{ expires: number }>[]) {
      let after: string | undefined;
      for (;;) {
        const keys = await bucket.keysPage(after, SWEEP_PAGE);
        for (const k of keys) {
          const e = await bucket.entry(k);
          if (e && e.value.expires < before) await bucket.deleteIf(k, e.revision);
        }
        if (keys.length < SWEEP_PAGE) break;
        after = keys[keys.length - 1];
      }
    }
  }
}

function pairKey(signer: string, peer: string): string {
  return `${storeKey(signer)}.${storeKey(peer)}`;
}
