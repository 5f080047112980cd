import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { NoRespondersError, subjectToken, type Bus, type BusSubscription } from '../ports/bus/bus.js';
import type { UserId } from './ids.js';
import { safeCall } from '../lib/safe-emit.js';
import { ThrottledLog } from '../lib/throttled-log.js';
import { busObject } from '../lib/bus-object.js';

/** What a connected user's connection offers the engine. */
export interface PresenceEndpoint {
  /**
   * Hands a message to the user; false when it could not be taken (closed, too slow).
   * Text or its UTF-8 bytes, as the sender forwarded it (#17.1: a Signal frame as bytes),
   * and always bytes off the bus.
   */
  deliver(data: Uint8Array | string): boolean;
  /** Another connection of the same user took over. */
  replaced(): void;
  /** An admin removed every active user. */
  kicked(): void;
}

export interface PresenceHandle {
  readonly user: UserId;
  detach(): void;
}

/**
 * A connection's claim on its user: `at` orders claims (newest wins), `id` breaks ties
 * and tells a connection its own claim. `at` is a hybrid clock: wall time, but past every
 * claim this node has heard, so a claim made after hearing another is always newer.
 */
interface Claim {
  id: string;
  at: number;
}

const CLAIM_ID = /^[0-9a-f-]{36}$/;
/** How far ahead of this node's clock a claim may be (clock skew); further is not a claim. */
const MAX_CLAIM_AHEAD_MS = 60_000;

/** A claim off the bus (untrusted), or undefined when it is not one. */
function parseClaim(data: Uint8Array): Claim | undefined {
  const value = busObject(data, 256);
  if (!value) return undefined;
  const { id, at } = value;
  if (typeof id !== 'string' || !CLAIM_ID.test(id)) return undefined;
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) return undefined;
  // A claim from far in the future would push every later claim past it.
  if (at > Date.now() + MAX_CLAIM_AHEAD_MS) return undefined;
  return { id, at };
}

const newer = (a: Claim, b: Claim): boolean => a.at > b.at || (a.at === b.at && a.id > b.id);

/** Told when a message could not be handed to its target (offline, or it refused it). */
export type Undelivered = (user: UserId) => void;

/**
 * Who is reachable right now, one active connection per user. A target connected to this
 * node is handed its messages directly, from the local table; every other one is reached
 * over the bus, so the same code works when the sender and the target are on different
 * nodes: delivery is a request to `<ns>.deliver.<user>` (no responder = offline), and a new
 * connection announces its claim on `<ns>.claim.<user>`; of two claims the newer wins.
 * Every node listens to every claim (`<ns>.claim.*`) from the start, so two connections
 * of one user made at the same instant on two nodes still hear each other: the older
 * steps aside, and a connection that hears an older claim repeats its own so that the
 * older one (which may have missed it) hears it too.
 *
 * On a bus that reaches no other node (`reachesOtherNodes === false`: one node) the local
 * table is the whole truth: an attach lets this node's older holder go directly (what a
 * claim heard would do) and holds no `deliver` subscription, and no claim is published
 * or heard; a user missing from the table is offline. In a cluster nothing changes.
 */
export class Presence {
  /**
   * Local attachments per user, keyed by the user's subject token (what a claim's
   * subject names); a user briefly has two while one replaces the other. An array, not a
   * Set: ten thousand users hold one each, and a Set costs several times the memory.
   */
  private readonly perUser = new Map<string, LocalAttachment[]>();
  private attached = 0;
  /**
   * No other node can hear this bus: claims and per-connection `deliver` subscriptions
   * would only reach this node, which answers from `perUser` (attach, with its claim's
   * id, publish and subscription, went from 11 % to 2 % of an accept's busy samples in
   * the profile of a 10,000-connection burst, #17.1).
   */
  private readonly alone: boolean;
  private readonly subs: BusSubscription[];
  private readonly badInput: ThrottledLog;
  /** Deliveries and questions the bus could not carry (NATS down: one per message otherwise). */
  private readonly busTrouble: ThrottledLog;
  /** The newest claim time made or heard here. */
  private clock = 0;

  constructor(
    private readonly bus: Bus,
    private readonly namespace: string,
    private readonly log: Logger,
    private readonly deliverTimeoutMs = 2000,
  ) {
    this.badInput = new ThrottledLog(log, 5);
    this.busTrouble = new ThrottledLog(log, 1);
    this.alone = bus.reachesOtherNodes === false;
    this.subs = [
      bus.subscribe(`${namespace}.kickall`, () => {
        for (const a of this.allAttached()) {
          a.detach();
          safeCall(this.log, 'presence.kicked', () => a.endpoint.kicked());
        }
      }),
    ];
    if (!this.alone)
      this.subs.push(bus.subscribe(`${namespace}.claim.*`, (msg) => this.onClaim(msg.subject, msg.data)));
  }

  get size(): number {
    return this.attached;
  }

  /** Whether `user` is connected to this node now. */
  has(user: string): boolean {
    return this.perUser.has(subjectToken(user));
  }

  /**
   * Whether `user` is connected to any node now. A node that cannot tell (the bus down or
   * slow) says yes: callers use this to keep what a user holds, and keeping is safe.
   */
  async connectedAnywhere(user: string): Promise<boolean> {
    if (this.has(user)) return true;
    // One node: nobody else could answer the question (the bus would say "no responders").
    if (this.alone) return false;
    try {
      // An empty delivery is the question "is the user connected there?" (see attach).
      await this.bus.request(`${this.namespace}.deliver.${subjectToken(user)}`, '', {
        timeoutMs: this.deliverTimeoutMs,
      });
      return true;
    } catch (err) {
      if (err instanceof NoRespondersError) return false;
      this.busTrouble.warn({ err, user }, 'presence: could not ask the cluster whether a user is connected');
      return true;
    }
  }

  /**
   * Hands `data` (text, or its UTF-8 bytes: owned by the receiver from here on, never
   * reused by the sender) to `user`'s connection; `undelivered` is called (now, or when the bus
   * answers) when it was not taken. A user connected here gets it directly, without the
   * bus, a Promise or a copy: the common case of one node, and a message between two
   * users of one cluster node. Sends from one connection arrive in the order made: the
   * local path is synchronous, and a bus request is published before this returns.
   * On one node a user missing from the table is offline: `undelivered` is called now,
   * so the sender's notices keep the order of its messages (through the bus, the answer
   * came a Promise later, after notices for messages read in the same turn).
   */
  forward(user: UserId, data: string | Uint8Array, undelivered: Undelivered): void {
    const holders = this.perUser.get(subjectToken(user));
    if (holders) {
      if (!newestOf(holders).endpoint.deliver(data)) undelivered(user);
      return;
    }
    if (this.alone) {
      undelivered(user);
      return;
    }
    this.sendOverBus(user, data).then(
      (taken) => {
        if (!taken) safeCall(this.log, 'presence.undelivered', undelivered, user);
      },
      // sendOverBus settles every bus error itself; this is only the guard.
      (err: unknown) => this.log.error({ err }, 'presence delivery failed'),
    );
  }

  attach(user: UserId, endpoint: PresenceEndpoint): PresenceHandle {
    const token = subjectToken(user);
    this.clock = Math.max(Date.now(), this.clock + 1);
    if (this.alone) return this.attachAlone(user, endpoint, token);
    const claim: Claim = { id: randomUUID(), at: this.clock };
    const attachment = new LocalAttachment(user, endpoint, claim, token, this);
    // Announce first: the older holder on this node lets go (synchronously on the local
    // bus) before this one starts answering deliveries. The claim subscription is the
    // node's own, older than any attachment, so the announcement is heard everywhere.
    this.bus.publish(`${this.namespace}.claim.${token}`, JSON.stringify(claim));
    const mine = this.perUser.get(token);
    if (mine) mine.push(attachment);
    else this.perUser.set(token, [attachment]);
    this.attached++;
    // One subscription a connection (held by thousands at once): a message to deliver,
    // or, when empty, the question whether the user is connected (never a message:
    // forwarded frames are JSON objects).
    attachment.sub = this.bus.subscribe(`${this.namespace}.deliver.${token}`, (msg) =>
      msg.respond?.(msg.data.length === 0 || endpoint.deliver(msg.data) ? '1' : '0'),
    );
    return attachment;
  }

  /**
   * attach on one node: the older holder, if any, lets go now, as a claim heard off the
   * bus would make it, before the new one is in the table. The claim needs no id: this
   * node's clock makes every claim's time its own (ids only break ties between nodes).
   */
  private attachAlone(user: UserId, endpoint: PresenceEndpoint, token: string): PresenceHandle {
    const attachment = new LocalAttachment(user, endpoint, { id: '', at: this.clock }, token, this);
    const older = this.perUser.get(token);
    if (older) for (const a of [...older]) this.replace(a);
    const mine = this.perUser.get(token); // a replaced() may have attached again
    if (mine) mine.push(attachment);
    else this.perUser.set(token, [attachment]);
    this.attached++;
    return attachment;
  }

  /** A newer connection of the same user took `a`'s place (on this node or another). */
  private replace(a: LocalAttachment): void {
    a.detach();
    safeCall(this.log, 'presence.replaced', () => a.endpoint.replaced());
  }

  /** @internal LocalAttachment.detach */
  release(attachment: LocalAttachment): void {
    const mine = this.perUser.get(attachment.token);
    const at = mine ? mine.indexOf(attachment) : -1;
    if (at < 0) return;
    this.attached--;
    if (mine!.length === 1) this.perUser.delete(attachment.token);
    else mine!.splice(at, 1);
  }

  private allAttached(): LocalAttachment[] {
    return [...this.perUser.values()].flat();
  }

  /** True when the user's node says it took the message; false when offline or refused. */
  private async sendOverBus(user: UserId, data: string | Uint8Array): Promise<boolean> {
    // The request is published before this returns (on both buses), so sends from one
    // connection reach the target's node in the order they were made.
    try {
      const answer = await this.bus.request(`${this.namespace}.deliver.${subjectToken(user)}`, data, {
        timeoutMs: this.deliverTimeoutMs,
      });
      return answer.length === 1 && answer[0] === 0x31; // '1'
    } catch (err) {
      if (err instanceof NoRespondersError) return false;
      this.busTrouble.warn({ err, user }, 'presence delivery failed');
      return false;
    }
  }

  /** Detaches every active user on every node; each endpoint's `kicked()` runs. */
  kickAll(): void {
    this.bus.publish(`${this.namespace}.kickall`);
  }

  close(): void {
    for (const s of this.subs) s.unsubscribe();
    for (const a of this.allAttached()) a.detach();
  }

  private onClaim(subject: string, data: Uint8Array): void {
    const claim = parseClaim(data);
    if (!claim) {
      this.badInput.warn({ subject, bytes: data.length }, 'presence: malformed claim on the bus dropped');
      return;
    }
    this.clock = Math.max(this.clock, claim.at);
    const holders = this.perUser.get(subject.slice(subject.lastIndexOf('.') + 1));
    if (!holders) return;
    for (const a of [...holders]) {
      if (a.claim.id === claim.id) continue;
      if (newer(claim, a.claim)) {
        this.replace(a);
      } else {
        // An older claim, made before this one was heard: say again who holds the user.
        this.bus.publish(subject, JSON.stringify(a.claim));
      }
    }
  }
}

/**
 * The holder a local message goes to. Two holders of one user live here only between a
 * new connection's claim and its echo off the bus (NATS): the newer is the one that stays.
 */
function newestOf(holders: LocalAttachment[]): LocalAttachment {
  let best = holders[0]!;
  for (let i = 1; i < holders.length; i++) if (newer(holders[i]!.claim, best.claim)) best = holders[i]!;
  return best;
}

class LocalAttachment implements PresenceHandle {
  sub: BusSubscription | undefined;
  private detached = false;

  constructor(
    readonly user: UserId,
    readonly endpoint: PresenceEndpoint,
    readonly claim: Claim,
    /** The user's subject token, its key in the presence's table. */
    readonly token: string,
    private readonly presence: Presence,
  ) {}

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.sub?.unsubscribe();
    this.presence.release(this);
  }
}
