import { randomUUID } from 'node:crypto';
import { Call, type CallEnd, type CallParties } from './call.js';
import type { RoomRegistry } from './room-registry.js';
import { asRoomId } from './room-types.js';

export { Call, type CallEnd, type CallState } from './call.js';

export interface CallBookOptions {
  ringTimeoutMs: number;
  idleTimeoutMs: number;
  /** Every end, once per call, with the reason, after the call's room has closed. */
  onEnd(call: Call, reason: CallEnd): void;
}

/**
 * One-to-one calls between two parties, each a room in the registry: ringing until the
 * callee accepts or rejects or the ring times out; accepted until either hangs up, a new
 * call between the same pair replaces it, or it has been idle (nobody in its room, that
 * is no media open) too long. At most one live call per pair, whoever called.
 */
export class CallBook {
  private readonly calls = new Map<string, Call>();
  private readonly byId = new Map<string, Call>();
  private readonly timers = new Map<Call, NodeJS.Timeout>();

  constructor(
    private readonly rooms: RoomRegistry,
    private readonly opts: CallBookOptions,
  ) {}

  /** The live (ringing or accepted) call between two parties, either way round. */
  between(a: string, b: string): Call | undefined {
    return this.calls.get(pair(a, b));
  }

  /** The live call of this book with that id. */
  find(id: string): Call | undefined {
    return this.byId.get(id);
  }

  /** @param id the call's id, unique across the cluster (random by default). */
  ring(caller: string, callee: string, id: string = randomUUID()): Call {
    const old = this.between(caller, callee);
    if (old) this.end(old, 'replaced');
    // A fresh room per call: a replaced call's room may still be closing.
    const room = this.rooms.create<CallParties>(asRoomId(`call-${id}`), {
      kind: 'call',
      capacity: 2,
      leaveWhenIdle: true,
      metadata: { caller, callee },
    });
    const call = new Call(id, room, (c, reason) => this.end(c, reason));
    // Media in the room stops the idle clock; the last one leaving starts it.
    room.events.on('participantJoined', () => {
      if (call.state === 'accepted') this.disarm(call);
    });
    room.events.on('participantLeft', () => {
      if (call.state === 'accepted' && room.size === 0) this.arm(call, this.opts.idleTimeoutMs, 'idle');
    });
    this.calls.set(pair(caller, callee), call);
    this.byId.set(id, call);
    this.arm(call, this.opts.ringTimeoutMs, 'ring-timeout');
    return call;
  }

  /** The callee accepts; undefined when no call from `caller` to `callee` is ringing. */
  accept(callee: string, caller: string): Call | undefined {
    const call = this.between(caller, callee);
    if (!call || call.state !== 'ringing' || call.callee !== callee) return undefined;
    call.moveTo('accepted');
    // No media yet: the idle clock runs until the first stream opens.
    this.arm(call, this.opts.idleTimeoutMs, 'idle');
    return call;
  }

  reject(callee: string, caller: string): Call | undefined {
    const call = this.between(caller, callee);
    if (!call || call.state !== 'ringing' || call.callee !== callee) return undefined;
    this.end(call, 'rejected');
    return call;
  }

  /** Ends the call (idempotent): its room closes (media stops), then `onEnd`. */
  end(call: Call, reason: CallEnd): void {
    if (call.closed) return;
    call.moveTo(reason === 'rejected' ? 'rejected' : 'ended');
    this.disarm(call);
    const key = pair(call.caller, call.callee);
    if (this.calls.get(key) === call) this.calls.delete(key);
    this.byId.delete(call.id);
    call.room.close(reason);
    this.opts.onEnd(call, reason);
  }

  get size(): number {
    return this.calls.size;
  }

  close(): void {
    for (const call of [...this.calls.values()]) this.end(call, 'shutdown');
  }

  private arm(call: Call, ms: number, reason: CallEnd): void {
    this.disarm(call);
    const t = setTimeout(() => this.end(call, reason), ms);
    t.unref();
    this.timers.set(call, t);
  }

  private disarm(call: Call): void {
    const t = this.timers.get(call);
    if (t) clearTimeout(t);
    this.timers.delete(call);
  }
}

function pair(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
