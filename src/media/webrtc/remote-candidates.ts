import { ChorusError } from '../../core/errors.js';
import type { PeerLeg } from './peer-leg.js';

/** Trickled candidates one leg takes at most (a client has a handful per network interface). */
export const MAX_REMOTE_CANDIDATES = 64;
/**
 * How long after its answer a leg waits for the client's own connectivity checks before
 * it checks the client's trickled candidates itself. The SFU learns a client's address
 * from the client's checks (sdp.ts, offerWithoutCandidates); checking first, while the
 * answer may still be on its way, is what made libdatachannel clients fail their DTLS
 * handshake (#18.7). A second is far past any answer's delivery; a client whose checks
 * do reach the server has connected by then and needs none of its candidates checked.
 */
export const CHECK_TRICKLED_AFTER_MS = 1000;

/** `candidate:<foundation> <component> <udp|tcp> <priority> <address> <port> typ <type> ...`. */
const CANDIDATE =
  /^candidate:[A-Za-z0-9+/]{1,32} \d{1,3} (udp|tcp|UDP|TCP) \d{1,10} [A-Za-z0-9.:_-]{1,253} \d{1,5} typ (host|srflx|prflx|relay)( [\x21-\x7e ]*)?$/;

/**
 * The candidate line without its `a=` (an SDP attribute or the browser's
 * `RTCIceCandidate.candidate`), or ChorusError `invalid_argument` when it is not one.
 */
export function candidateLine(text: string): string {
  const line = text.trim().replace(/^a=/, '');
  if (line.length > 512 || !CANDIDATE.test(line))
    throw new ChorusError('invalid_argument', 'not an ICE candidate (expected "candidate:... typ ...")');
  return line;
}

/**
 * The candidates a client trickled to one server leg (native `trickle`, WHIP `PATCH`):
 * kept until the leg has answered and then waited `CHECK_TRICKLED_AFTER_MS` for the
 * client's own checks; if it is still not connected, they are given to libdatachannel
 * (`addRemoteCandidate`) so the SFU checks them too (a client that cannot reach the
 * server first but can be reached). Bounded per leg.
 */
export class RemoteCandidates {
  private readonly held: Array<{ line: string; mid: string | undefined }> = [];
  private count = 0;
  private checking = false;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly leg: PeerLeg) {
    leg.onClose(() => clearTimeout(this.timer));
  }

  /** Whether the client said it has no more (`end-of-candidates`). */
  get complete(): boolean {
    return this.ended;
  }

  /** How many candidates the client trickled to this leg. */
  get received(): number {
    return this.count;
  }

  /** One trickled candidate (checked: ChorusError `invalid_argument`, or `capacity` past the limit). */
  add(candidate: string, mid: string | undefined): void {
    const line = candidateLine(candidate);
    if (this.count >= MAX_REMOTE_CANDIDATES)
      throw new ChorusError('capacity', `at most ${MAX_REMOTE_CANDIDATES} candidates per peer connection`);
    this.count++;
    if (this.leg.closed || this.leg.connected) return; // ICE has its pair: nothing to check
    if (this.checking) this.apply(line, mid);
    else this.held.push({ line, mid });
  }

  /** The client has gathered every candidate. */
  end(): void {
    this.ended = true;
  }

  /** Called once the answer went out: the held candidates are checked if ICE has not connected by then. */
  answered(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      this.leg.guard('checkTrickled', () => {
        if (this.leg.closed || this.leg.connected) {
          this.held.length = 0;
          return;
        }
        this.checking = true;
        for (const c of this.held.splice(0)) this.apply(c.line, c.mid);
      }),
      CHECK_TRICKLED_AFTER_MS,
    );
    this.timer.unref();
  }

  private apply(line: string, mid: string | undefined): void {
    const section = mid ?? /^a=mid:(\S+)/m.exec(this.leg.pc.remoteDescription()?.sdp ?? '')?.[1] ?? '0';
    try {
      this.leg.pc.addRemoteCandidate(line, section);
    } catch (err) {
      // A candidate libdatachannel refuses (an unknown mid, an unresolvable name) is the
      // client's: logged, never fatal to the leg.
      this.leg.log.debug({ err, candidate: line }, 'trickled candidate refused');
    }
  }
}
