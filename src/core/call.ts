import type { Room } from './room.js';

export type CallState = 'ringing' | 'accepted' | 'rejected' | 'ended';

/**
 * Why a call left the ringing or accepted state (for events and logs). `lost`: another
 * node's call between the same pair took the pair's record first (nobody was told of
 * this one yet).
 */
export type CallEnd = 'rejected' | 'ring-timeout' | 'hangup' | 'idle' | 'replaced' | 'shutdown' | 'lost';

/** What a call's room carries: its two parties. */
export interface CallParties {
  readonly caller: string;
  readonly callee: string;
}

/**
 * A one-to-one call: a room of two (kind `call`) with a ringing, accepted, ended state
 * on top. The room holds whoever has media open in the call; it closes when the call
 * ends, and its cascade stops that media. The state moves only through the CallBook.
 */
export class Call {
  readonly startedAt = Date.now();
  private current: CallState = 'ringing';
  private acceptedStamp: number | undefined;

  /**
   * @param id unique across the cluster: names the call in the store and on the bus.
   * @param end the CallBook's ending (state, timers, room, `onEnd`).
   */
  constructor(
    readonly id: string,
    readonly room: Room<CallParties>,
    private readonly end: (call: Call, reason: CallEnd) => void,
  ) {}

  get caller(): string {
    return this.room.metadata.caller;
  }

  get callee(): string {
    return this.room.metadata.callee;
  }

  get state(): CallState {
    return this.current;
  }

  get acceptedAt(): number | undefined {
    return this.acceptedStamp;
  }

  /** Rejected or ended. */
  get closed(): boolean {
    return this.current === 'rejected' || this.current === 'ended';
  }

  /** Ends the call (idempotent): its room closes, so its media stops. */
  close(reason: CallEnd = 'hangup'): void {
    this.end(this, reason);
  }

  /** The other party of `id`'s call. */
  other(id: string): string {
    return id === this.caller ? this.callee : this.caller;
  }

  /** @internal the CallBook's transitions. */
  moveTo(state: CallState): void {
    this.current = state;
    if (state === 'accepted') this.acceptedStamp = Date.now();
  }
}
