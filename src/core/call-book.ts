export type CallState = 'ringing' | 'accepted' | 'rejected' | 'ended';

/** Why a call left the ringing or accepted state (for events and logs). */
export type CallEnd = 'rejected' | 'ring-timeout' | 'hangup' | 'idle' | 'replaced' | 'shutdown';

export interface Call {
  readonly caller: string;
  readonly callee: string;
  state: CallState;
  readonly startedAt: number;
  acceptedAt?: number;
  /** Surface data attached to the live call (its mixer, streams); dropped when it ends. */
  media?: unknown;
}

export interface CallBookOptions {
  ringTimeoutMs: number;
  idleTimeoutMs: number;
  /** Every end, once per call, with the reason. */
  onEnd(call: Call, reason: CallEnd): void;
}

/**
 * One-to-one calls between two parties: ringing until the callee accepts or rejects or
 * the ring times out; accepted until either hangs up, a new call between the same pair
 * replaces it, or it has been idle (no media open, as told by `setActive`) too long.
 * At most one live call per pair, whoever called.
 */
export class CallBook {
  private readonly calls = new Map<string, Call>();
  private readonly timers = new Map<Call, NodeJS.Timeout>();

  constructor(private readonly opts: CallBookOptions) {}

  /** The live (ringing or accepted) call between two parties, either way round. */
  between(a: string, b: string): Call | undefined {
    return this.calls.get(pair(a, b));
  }

  ring(caller: string, callee: string): Call {
    const old = this.between(caller, callee);
    if (old) this.end(old, 'replaced');
    const call: Call = { caller, callee, state: 'ringing', startedAt: Date.now() };
    this.calls.set(pair(caller, callee), call);
    this.arm(call, this.opts.ringTimeoutMs, 'ring-timeout');
    return call;
  }

  /** The callee accepts; undefined when no call from `caller` to `callee` is ringing. */
  accept(callee: string, caller: string): Call | undefined {
    const call = this.between(caller, callee);
    if (!call || call.state !== 'ringing' || call.callee !== callee) return undefined;
    call.state = 'accepted';
    call.acceptedAt = Date.now();
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

  /** Media opened (true) or all media closed (false) on an accepted call. */
  setActive(call: Call, active: boolean): void {
    if (call.state !== 'accepted') return;
    if (active) this.disarm(call);
    else this.arm(call, this.opts.idleTimeoutMs, 'idle');
  }

  end(call: Call, reason: CallEnd): void {
    if (call.state === 'ended' || call.state === 'rejected') return;
    call.state = reason === 'rejected' ? 'rejected' : 'ended';
    this.disarm(call);
    const key = pair(call.caller, call.callee);
    if (this.calls.get(key) === call) this.calls.delete(key);
    this.opts.onEnd(call, reason);
    call.media = undefined;
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
