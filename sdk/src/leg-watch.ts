/** A media leg that stays down this long is negotiated again (it may come back by itself first). */
export const LEG_GRACE_MS = 4000;

/**
 * Tells when a peer connection has been down (disconnected, failed or closed; not while
 * connecting) for LEG_GRACE_MS: each leg owner asks it on the room's tick and makes the
 * leg again when it says so.
 */
export class LegWatch {
  #downSince: number | undefined;

  /** True once `pc` has been down for the grace (and then starts counting afresh). */
  overdue(pc: RTCPeerConnection | undefined, now: number): boolean {
    const state = pc?.connectionState;
    if (!pc || state === 'connected' || state === 'new' || state === 'connecting') {
      this.#downSince = undefined;
      return false;
    }
    this.#downSince ??= now;
    if (now - this.#downSince < LEG_GRACE_MS) return false;
    this.#downSince = undefined;
    return true;
  }

  /** A new leg: whatever the old one did no longer counts. */
  reset(): void {
    this.#downSince = undefined;
  }
}
