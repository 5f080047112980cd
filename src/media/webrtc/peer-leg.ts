import { randomBytes } from 'node:crypto';
import type { PeerConnection } from 'node-datachannel';
import type { Logger } from 'pino';
import { guarded } from './native-guard.js';
import { rtcConfig, type WebRtcSettings } from './peer-config.js';
import { ChorusError } from '../../core/errors.js';
import { announceAddress, offerWithoutCandidates } from './sdp.js';
import { clip } from './sdp-validation.js';
import { nodeDatachannel } from './node-datachannel.js';
import { RemoteCandidates } from './remote-candidates.js';

/**
 * A server-side peer connection and its lifetime: non-trickle answers (the whole answer
 * after gathering), state changes, an idempotent close that runs the owner's teardown
 * once. Every native callback is guarded.
 */
export class PeerLeg {
  /** Unique without a process-wide counter: 48 random bits, short enough for log lines. */
  readonly id = `peer-${randomBytes(6).toString('base64url')}`;
  readonly pc: PeerConnection;
  private closedFlag = false;
  private readonly onCloseHandlers: Array<() => void> = [];
  private readonly onConnectedHandlers: Array<() => void> = [];
  private disconnectTimer: NodeJS.Timeout | undefined;
  /** When media or RTCP last arrived from the peer: a leg that goes silent is dead. */
  lastHeard = Date.now();
  /** Until connected, the silence timeout does not apply (setup has its own limit). */
  connected = false;
  readonly createdAt = Date.now();
  private remote: RemoteCandidates | undefined;
  private answeredFlag = false;

  constructor(
    private readonly settings: WebRtcSettings,
    readonly log: Logger,
  ) {
    this.pc = new (nodeDatachannel().PeerConnection)(this.id, rtcConfig(settings));
    this.pc.onStateChange(
      this.guard('onStateChange', (state: string) => {
        this.log.debug({ state }, 'peer state');
        if (state === 'connected') {
          clearTimeout(this.disconnectTimer);
          this.connected = true;
          this.lastHeard = Date.now();
          // Still inside this guarded callback: a throwing handler closes this peer alone.
          for (const fn of this.onConnectedHandlers.splice(0)) fn();
        }
        if (state === 'failed' || state === 'closed') this.close(`peer ${state}`);
        // A disconnected peer may come back (ICE restart of a flaky link); give it a moment.
        if (state === 'disconnected') {
          this.disconnectTimer = setTimeout(() => this.close('peer disconnected'), 5000);
          this.disconnectTimer.unref();
        }
      }),
    );
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** The candidates the client trickled to this leg (remote-candidates.ts). */
  get remoteCandidates(): RemoteCandidates {
    if (!this.remote) {
      this.remote = new RemoteCandidates(this);
      if (this.answeredFlag) this.remote.answered();
    }
    return this.remote;
  }

  /** Wraps a native callback: a throw closes this peer alone. */
  guard<A extends unknown[]>(what: string, fn: (...args: A) => void): (...args: A) => void {
    return guarded(this.log, what, () => this.close('callback failed'), fn);
  }

  /** Runs `fn` when the leg closes (at once if it has); returns a function that cancels it. */
  onClose(fn: () => void): () => void {
    if (this.closedFlag) fn();
    else this.onCloseHandlers.push(fn);
    return () => remove(this.onCloseHandlers, fn);
  }

  /**
   * Runs `fn` once, when ICE and DTLS first reach `connected` (at once if they have and
   * the leg is open); returns a function that cancels it. Never runs after a close.
   */
  onConnected(fn: () => void): () => void {
    if (this.closedFlag) return () => undefined;
    if (this.connected) fn();
    else this.onConnectedHandlers.push(fn);
    return () => remove(this.onConnectedHandlers, fn);
  }

  /** Applies the (already filtered) offer and resolves with the complete answer. */
  answer(offer: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timeoutMs = this.settings.gatherTimeoutMs ?? 5000;
      const timer = setTimeout(() => reject(new Error('ICE gathering did not complete')), timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        const d = this.pc.localDescription();
        if (!d) return reject(new Error('no local description'));
        const sdp = this.settings.announcedAddress
          ? announceAddress(d.sdp, this.settings.announcedAddress)
          : d.sdp;
        this.answeredFlag = true;
        this.remote?.answered();
        resolve(sdp);
      };
      this.pc.onGatheringStateChange(
        this.guard('onGatheringStateChange', (state: string) => {
          if (state === 'complete') done();
        }),
      );
      try {
        // The offerer's checks come first, so it holds our answer before ICE connects
        // (sdp.ts, offerWithoutCandidates).
        this.pc.setRemoteDescription(offerWithoutCandidates(offer), 'offer');
      } catch (err) {
        // The offer passed validation but libdatachannel still refused it: the client's
        // input, so a 400 (its text quotes the offer: clipped).
        clearTimeout(timer);
        reject(
          new ChorusError(
            'invalid_sdp',
            `the offer was refused: ${clip(String((err as Error).message ?? err), 120)}`,
          ),
        );
        return;
      }
      this.prepareAnswer?.();
      this.pc.setLocalDescription('answer');
      if (this.pc.gatheringState() === 'complete') done();
    });
  }

  /** Set by the owner: runs between the remote offer and the local answer. */
  prepareAnswer: (() => void) | undefined;

  close(reason: string): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    clearTimeout(this.disconnectTimer);
    this.onConnectedHandlers.length = 0;
    this.log.info({ reason }, 'peer closed');
    for (const fn of this.onCloseHandlers.splice(0)) {
      try {
        fn();
      } catch (err) {
        this.log.error({ err }, 'peer close handler threw');
      }
    }
    try {
      this.pc.close();
    } catch (err) {
      this.log.warn({ err }, 'closing the native peer connection failed');
    }
  }
}

function remove(list: Array<() => void>, fn: () => void): void {
  const i = list.indexOf(fn);
  if (i >= 0) list.splice(i, 1);
}
