import { ChorusError } from '../../core/errors.js';
import {
  BusTimeoutError,
  NoRespondersError,
  subjectToken,
  type BusSubscription,
} from '../../ports/bus/bus.js';
import { pingSubject } from '../../ports/membership/membership.js';
import { busJson, readBusJson } from '../bus-json.js';
import type { MediaSlots, Slot } from './media-group.js';
import type { RelayContext } from './relay-context.js';
import { RemoteMixer } from './remote-mixer.js';
import {
  mixSubjects,
  relayAnswer,
  relayNotice,
  type MixKey,
  type MixSubjects,
  type RelayOutcome,
  type RelayRequest,
} from './relay-wire.js';
import type { NodeRef } from './voip-node.js';

/** How long a slot booked for a stream waits for it to start (a WebSocket upgrade). */
const BOOKING_MS = 10_000;
const REQUEST_TIMEOUT_MS = 3000;
/**
 * How often a node with streams of a remote mixer checks that its owner still answers:
 * a killed owner's streams end within this (plus a ping), not only when the cluster
 * declares the node gone (up to 8 s).
 */
const OWNER_CHECK_MS = 2000;

/** The owner holds no such call or room (it ended, or the owner is dead or restarted). */
export class MixerGoneError extends Error {
  constructor(readonly key: MixKey) {
    super(`voip ${key.kind} ${key.id}: its mixer is gone`);
    this.name = 'MixerGoneError';
  }
}

/**
 * A call or room whose mixer another node (the owner) runs, as this node's media routes
 * see it: each stream here books its member's slot on the owner first (`reserve`: the
 * owner's model says "already connected" or "room full"), then runs against a
 * RemoteMixer. This node's streams of it end when the owner says so (a slot ended, the
 * call or room closed) or when the owner's node is gone.
 */
export class RemoteGroup implements MediaSlots {
  readonly mixer: RemoteMixer;
  readonly subjects: MixSubjects;
  private readonly closers = new Map<string, () => void>();
  private readonly booked = new Map<string, NodeJS.Timeout>();
  private pending = 0;
  private readonly subs: BusSubscription[];
  private done = false;
  private readonly ownerCheck: NodeJS.Timeout;

  constructor(
    readonly key: MixKey,
    readonly owner: NodeRef,
    private readonly ctx: RelayContext,
    private readonly onIdle: (g: RemoteGroup) => void,
  ) {
    this.subjects = mixSubjects(key, owner);
    this.mixer = new RemoteMixer(this.subjects, ctx);
    this.subs = [
      ctx.bus.subscribe(this.subjects.node(ctx.self.id), (m) => {
        const notice = readBusJson(relayNotice, m.data, { surface: 'voip', subject: m.subject }, ctx.busLog);
        if (notice) this.ended(notice.member, notice.slot);
        else ctx.stats.dropped++;
      }),
      ctx.bus.subscribe(this.subjects.closed, () => this.close('closed by its node')),
    ];
    this.ownerCheck = setInterval(() => void this.checkOwner(), OWNER_CHECK_MS);
    this.ownerCheck.unref();
  }

  get closed(): boolean {
    return this.done;
  }

  /** Books the slot on the owner; throws the owner's refusal, or MixerGoneError. */
  async reserve(id: string, slot: Slot): Promise<void> {
    const k = slotKey(slot, id);
    if (this.closers.has(k) || this.booked.has(k))
      throw new ChorusError('conflict', 'user already connected');
    this.pending++;
    try {
      const outcome = await this.ask('occupy', id, slot);
      if (outcome === 'conflict') throw new ChorusError('conflict', 'user already connected');
      if (outcome === 'capacity') throw new ChorusError('capacity', 'room full');
      if (outcome === 'gone' || this.done) {
        // Not there any more: every stream of it here ends too (their clients come back).
        this.close('its mixer is gone');
        throw new MixerGoneError(this.key);
      }
      this.booked.set(
        k,
        setTimeout(() => {
          // The stream never started (its upgrade failed): give the slot back.
          this.booked.delete(k);
          this.tell('release', id, slot);
          this.idleCheck();
        }, BOOKING_MS).unref(),
      );
    } finally {
      this.pending--;
    }
  }

  occupy(id: string, slot: Slot, close: () => void): boolean {
    const k = slotKey(slot, id);
    const timer = this.booked.get(k);
    if (this.done || !timer) return false;
    clearTimeout(timer);
    this.booked.delete(k);
    this.closers.set(k, close);
    return true;
  }

  release(id: string, slot: Slot, close: () => void): void {
    const k = slotKey(slot, id);
    if (this.closers.get(k) !== close) return;
    this.closers.delete(k);
    this.tell('release', id, slot);
    this.idleCheck();
  }

  /** Ends every stream of it here (the owner closed it, or its node is gone). */
  close(reason: string): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.ownerCheck);
    this.ctx.log.info({ key: this.key, owner: this.owner.id, reason }, 'voip relay: remote mixer closed');
    for (const s of this.subs) s.unsubscribe();
    for (const t of this.booked.values()) clearTimeout(t);
    this.booked.clear();
    const closers = [...this.closers.values()];
    this.closers.clear();
    for (const c of closers) c();
    this.mixer.close();
    this.onIdle(this);
  }

  /** The owner ended the slot: the stream here stops. */
  private ended(id: string, slot: Slot): void {
    const k = slotKey(slot, id);
    const close = this.closers.get(k);
    this.closers.delete(k);
    const timer = this.booked.get(k);
    if (timer) clearTimeout(timer);
    this.booked.delete(k);
    close?.();
    this.idleCheck();
  }

  /** Ends this node's streams of it when its owner's process no longer answers. */
  private async checkOwner(): Promise<void> {
    try {
      const answer = await this.ctx.bus.request(pingSubject(subjectToken(this.owner.id)), '', {
        timeoutMs: OWNER_CHECK_MS,
      });
      if (new TextDecoder().decode(answer) === this.owner.instance) return;
    } catch (err) {
      // A timeout (a busy owner, or NATS away) is no proof of death: wait for membership.
      if (!(err instanceof NoRespondersError)) return;
    }
    this.close('its node is gone');
  }

  private idleCheck(): void {
    if (this.closers.size === 0 && this.booked.size === 0 && this.pending === 0) this.close('idle');
  }

  private async ask(op: RelayRequest['op'], member: string, slot: Slot): Promise<RelayOutcome> {
    const req: RelayRequest = { op, member, slot, node: this.ctx.self };
    try {
      const answer = await this.ctx.bus.request(this.subjects.ctl, busJson(req), {
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      const parsed = readBusJson(
        relayAnswer,
        answer,
        { surface: 'voip', subject: this.subjects.ctl },
        this.ctx.busLog,
      );
      return parsed?.outcome ?? 'gone';
    } catch (err) {
      if (err instanceof NoRespondersError) return 'gone';
      if (err instanceof BusTimeoutError)
        throw new ChorusError('unavailable', `${this.key.kind} owner ${this.owner.id} did not answer`);
      throw err;
    }
  }

  /** A release nobody waits for (the stream here is over either way). */
  private tell(op: RelayRequest['op'], member: string, slot: Slot): void {
    if (this.done) return;
    this.ask(op, member, slot).catch((err: unknown) =>
      this.ctx.log.warn({ err, key: this.key, member }, 'voip relay: release not delivered'),
    );
  }
}

const slotKey = (slot: Slot, member: string): string => `${slot}\u0000${member}`;
