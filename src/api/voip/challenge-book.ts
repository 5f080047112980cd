import { newChallenge } from './pkey.js';

/** Media routes a server ticket may authorize, each at most once per ticket. */
export type TicketUse = 'newCall' | 'upCall' | 'joinCall' | 'upRoom' | 'joinRoom';

interface Ticket {
  value: string;
  expires: number;
  used: Set<TicketUse>;
}

interface PeerChallenge {
  value: string;
  expires: number;
}

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
 */
export class ChallengeBook {
  private readonly tickets = new Map<string, Ticket>();
  private readonly peer = new Map<string, PeerChallenge>();
  private sweeps = 0;

  constructor(
    private readonly ticketTtlMs: number,
    private readonly challengeTtlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  issueTicket(key: string): string {
    this.sweepSometimes();
    const value = newChallenge();
    this.tickets.set(key, { value, expires: this.now() + this.ticketTtlMs, used: new Set() });
    return value;
  }

  /**
   * The ticket `key` must have signed for `use`, if it is current and not yet used for
   * it. The caller verifies the signature, then calls `spend`.
   */
  ticketFor(key: string, use: TicketUse): string | undefined {
    const t = this.tickets.get(key);
    if (!t || t.expires <= this.now() || t.used.has(use)) return undefined;
    return t.value;
  }

  /** `key`'s current ticket whatever it was used for, if not expired (read-only proofs). */
  currentTicket(key: string): string | undefined {
    const t = this.tickets.get(key);
    return t && t.expires > this.now() ? t.value : undefined;
  }

  spend(key: string, value: string, use: TicketUse): void {
    const t = this.tickets.get(key);
    if (!t || t.value !== value) return;
    if (use === 'newCall') this.tickets.delete(key);
    else t.used.add(use);
  }

  /** Records the challenge `signer` must sign next in its exchange with `peer`. */
  expect(signer: string, peer: string, challenge: string): void {
    this.sweepSometimes();
    this.peer.set(pairKey(signer, peer), { value: challenge, expires: this.now() + this.challengeTtlMs });
  }

  /** Takes (single use) the challenge `signer` owes `peer`; undefined if none or expired. */
  take(signer: string, peer: string): string | undefined {
    const k = pairKey(signer, peer);
    const c = this.peer.get(k);
    this.peer.delete(k);
    if (!c || c.expires <= this.now()) return undefined;
    return c.value;
  }

  /** Puts back a challenge whose signature failed, so a typo does not kill the call. */
  restore(signer: string, peer: string, challenge: string): void {
    this.peer.set(pairKey(signer, peer), { value: challenge, expires: this.now() + this.challengeTtlMs });
  }

  get size(): number {
    return this.tickets.size + this.peer.size;
  }

  /** Expired entries are dropped every 256 writes, so the maps stay bounded by activity. */
  private sweepSometimes(): void {
    if (++this.sweeps % 256 !== 0) return;
    const now = this.now();
    for (const [k, t] of this.tickets) if (t.expires <= now) this.tickets.delete(k);
    for (const [k, c] of this.peer) if (c.expires <= now) this.peer.delete(k);
  }
}

function pairKey(signer: string, peer: string): string {
  return `${signer}>${peer}`;
}
