import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { NoRespondersError, subjectToken, type Bus, type BusSubscription } from '../ports/bus/bus.js';
import type { UserId } from './ids.js';
import { safeCall } from '../lib/safe-emit.js';

/** What a connected user's connection offers the engine. */
export interface PresenceEndpoint {
  /** Hands a message to the user; false when it could not be taken (closed, too slow). */
  deliver(data: Uint8Array): boolean;
  /** Another connection of the same user took over. */
  replaced(): void;
  /** An admin removed every active user. */
  kicked(): void;
}

export interface PresenceHandle {
  readonly user: UserId;
  detach(): void;
}

const decoder = new TextDecoder();

/**
 * Who is reachable right now, one active connection per user. Everything goes over the
 * bus, so the same code works when the sender and the target are on different nodes:
 * delivery is a request to `<ns>.deliver.<user>` (no responder = offline), a new
 * connection announces itself on `<ns>.claim.<user>` and the previous one steps aside.
 */
export class Presence {
  private readonly local = new Set<LocalAttachment>();
  /** Local attachments per user, for `has` (a user briefly has two while one replaces the other). */
  private readonly perUser = new Map<string, number>();
  private readonly kickSub: BusSubscription;

  constructor(
    private readonly bus: Bus,
    private readonly namespace: string,
    private readonly log: Logger,
    private readonly deliverTimeoutMs = 2000,
  ) {
    this.kickSub = bus.subscribe(`${namespace}.kickall`, () => {
      for (const a of [...this.local]) {
        a.detach();
        safeCall(this.log, 'presence.kicked', () => a.endpoint.kicked());
      }
    });
  }

  get size(): number {
    return this.local.size;
  }

  /** Whether `user` is connected to this node now. */
  has(user: string): boolean {
    return this.perUser.has(user);
  }

  attach(user: UserId, endpoint: PresenceEndpoint): PresenceHandle {
    const token = subjectToken(user);
    const id = randomUUID();
    // Announce first, so the previous holder (here or on another node) lets go before
    // this one starts answering deliveries.
    this.bus.publish(`${this.namespace}.claim.${token}`, id);
    const attachment = new LocalAttachment(user, endpoint, () => {
      this.local.delete(attachment);
      const n = (this.perUser.get(user) ?? 1) - 1;
      if (n > 0) this.perUser.set(user, n);
      else this.perUser.delete(user);
    });
    this.perUser.set(user, (this.perUser.get(user) ?? 0) + 1);
    attachment.subs.push(
      this.bus.subscribe(`${this.namespace}.deliver.${token}`, (msg) => {
        const ok = endpoint.deliver(msg.data);
        msg.respond?.(ok ? '1' : '0');
      }),
      this.bus.subscribe(`${this.namespace}.claim.${token}`, (msg) => {
        if (decoder.decode(msg.data) === id) return;
        attachment.detach();
        safeCall(this.log, 'presence.replaced', () => endpoint.replaced());
      }),
    );
    this.local.add(attachment);
    return attachment;
  }

  /** True when the target took the message; false when it is offline or refused it. */
  async send(user: UserId, data: Uint8Array | string): Promise<boolean> {
    try {
      const answer = await this.bus.request(`${this.namespace}.deliver.${subjectToken(user)}`, data, {
        timeoutMs: this.deliverTimeoutMs,
      });
      return answer.length === 1 && answer[0] === 0x31; // '1'
    } catch (err) {
      if (err instanceof NoRespondersError) return false;
      this.log.warn({ err, user }, 'presence delivery failed');
      return false;
    }
  }

  /** Detaches every active user on every node; each endpoint's `kicked()` runs. */
  kickAll(): void {
    this.bus.publish(`${this.namespace}.kickall`);
  }

  close(): void {
    this.kickSub.unsubscribe();
    for (const a of [...this.local]) a.detach();
  }
}

class LocalAttachment implements PresenceHandle {
  readonly subs: BusSubscription[] = [];
  private detached = false;

  constructor(
    readonly user: UserId,
    readonly endpoint: PresenceEndpoint,
    private readonly onDetach: () => void,
  ) {}

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    for (const s of this.subs) s.unsubscribe();
    this.onDetach();
  }
}
