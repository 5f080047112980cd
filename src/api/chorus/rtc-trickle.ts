import { ChorusError } from '../../core/errors.js';
import type { PeerLeg } from '../../media/webrtc/peer-leg.js';
import { candidateLine, MAX_REMOTE_CANDIDATES } from '../../media/webrtc/remote-candidates.js';

/** Which of a participant's legs a `trickle` is for: a publisher PC by name, or a subscription. */
export type TrickleTarget = { pc: string } | { subscription: string };

/** One trickled item: a candidate (with its section), or the end of them. */
export type Trickled = { candidate: string; sdpMid?: string | undefined } | { end: true };

/**
 * A session's trickle ICE: routes each client candidate to the leg it is for. Candidates
 * that arrive while that leg's `publish` or `subscribe` is still being answered (the
 * client trickles right after its offer) are held, up to the per-leg limit, and handed
 * to the leg once it exists.
 */
export class RtcTrickle {
  private readonly pending = new Map<string, Trickled[]>();

  /** `find` gives the target's open leg on this node (the SFU's). */
  constructor(private readonly find: (target: TrickleTarget) => PeerLeg | undefined) {}

  /**
   * A negotiation of `target` starts: its candidates are held until the returned function
   * runs (after the answer, or the refusal), which hands them to the new leg.
   */
  negotiating(target: TrickleTarget): () => void {
    const k = keyOf(target);
    const held: Trickled[] = [];
    this.pending.set(k, held);
    return () => {
      if (this.pending.get(k) !== held) return; // a newer negotiation holds its own
      this.pending.delete(k);
      const leg = this.find(target);
      if (!leg) return;
      for (const t of held) {
        try {
          deliver(leg, t);
        } catch {
          // Checked when it was held; a leg that was replaced meanwhile may count differently.
        }
      }
    };
  }

  /** Adds one item to its leg (or holds it); ChorusError `not_found`, `invalid_argument` or `capacity`. */
  add(target: TrickleTarget, item: Trickled): void {
    if ('candidate' in item) candidateLine(item.candidate);
    const held = this.pending.get(keyOf(target));
    if (held) {
      if (held.length >= MAX_REMOTE_CANDIDATES)
        throw new ChorusError('capacity', `at most ${MAX_REMOTE_CANDIDATES} candidates per peer connection`);
      held.push(item);
      return;
    }
    const leg = this.find(target);
    if (!leg)
      throw new ChorusError(
        'not_found',
        'pc' in target
          ? `no publisher peer connection '${target.pc}' (publish first)`
          : `no subscription to ${target.subscription} (subscribe first)`,
      );
    deliver(leg, item);
  }
}

function deliver(leg: PeerLeg, item: Trickled): void {
  if ('end' in item) leg.remoteCandidates.end();
  else leg.remoteCandidates.add(item.candidate, item.sdpMid);
}

const keyOf = (t: TrickleTarget): string => ('pc' in t ? `pc\u0000${t.pc}` : `sub\u0000${t.subscription}`);
