import { backoffDelay } from './backoff.js';
import { ChorusError } from './errors.js';
import { offerFor, type TrickleSend } from './trickle.js';
import { LegWatch } from './leg-watch.js';
import type { ClientMessage, ServerMessage } from './protocol.js';
import type { RemoteParticipant } from './remote-participant.js';
import type { RemoteTrackPublication } from './track-publication.js';

/** What a subscription needs of its room. */
export interface SubscriptionLink {
  readonly rtcConfig: RTCConfiguration | undefined;
  connected(): boolean;
  request(msg: ClientMessage): Promise<ServerMessage>;
  /** Sends a leg's trickled candidates; undefined when the server takes none. */
  trickle(target: { subscription: string }): TrickleSend;
  subscribed(
    track: MediaStreamTrack,
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  ): void;
  unsubscribed(
    track: MediaStreamTrack,
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  ): void;
  failed(err: unknown): void;
}

const MAX_RETRIES = 6;

/**
 * Receiving one remote participant's tracks: one subscriber RTCPeerConnection with a
 * receive-only section per track. When their tracks change, or the leg fails, a new
 * peer connection is negotiated and replaces the old one (the protocol's way: the client
 * always offers, so there is no glare). Syncs are serialized and coalesced: several
 * track events in a row make at most one more negotiation.
 */
export class ParticipantSubscription {
  #pc: RTCPeerConnection | undefined;
  /** The track ids the current leg carries, in offer order. */
  #key = '';
  readonly #byTransceiver = new Map<RTCRtpTransceiver, RemoteTrackPublication>();
  #running = false;
  #again = false;
  #force = false;
  #retries = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #leg = new LegWatch();
  #closed = false;

  constructor(
    readonly participant: RemoteParticipant,
    private readonly link: SubscriptionLink,
  ) {}

  /** @internal For stats. */
  get peerConnection(): RTCPeerConnection | undefined {
    return this.#pc;
  }

  /** Brings the leg in line with the participant's tracks (`force`: renegotiate even if it matches). */
  sync(force = false): void {
    if (this.#closed) return;
    this.#force ||= force;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#loop();
  }

  /** Checks the leg now and then; one down for a while (LegWatch) is made again. */
  watch(now: number): void {
    if (this.#leg.overdue(this.#pc, now) && this.link.connected()) this.sync(true);
  }

  /** True when the leg is gone or failed (a reconnect should make it again). */
  get broken(): boolean {
    const state = this.#pc?.connectionState;
    return state === 'failed' || state === 'closed';
  }

  /** Ends the leg, reporting its tracks unsubscribed; `tellServer` sends `unsubscribe`. */
  close(tellServer: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    if (tellServer && this.#pc && this.link.connected())
      void this.link
        .request({ type: 'unsubscribe', identity: this.participant.identity })
        .catch(() => undefined);
    this.#replaceLeg(undefined, '', new Map());
  }

  async #loop(): Promise<void> {
    try {
      do {
        this.#again = false;
        const force = this.#force;
        this.#force = false;
        try {
          await this.#once(force);
          this.#retries = 0;
        } catch (err) {
          this.#retryLater(err);
        }
      } while (this.#again && !this.#closed);
    } finally {
      this.#running = false;
    }
  }

  /** A failed subscribe is tried again with backoff, unless the participant or the session went. */
  #retryLater(err: unknown): void {
    if (this.#closed || !this.link.connected()) return;
    if (err instanceof ChorusError && err.code === 'not_found') return; // their tracks' events will call again
    if (this.#retries >= MAX_RETRIES) {
      this.link.failed(err);
      return;
    }
    const wait = backoffDelay(this.#retries++);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.sync(true), wait);
  }

  async #once(force: boolean): Promise<void> {
    if (!this.link.connected() || this.#closed) return;
    const wanted = this.participant.trackList();
    const key = wanted.map((t) => t.trackId).join(' ');
    if (!force && key === this.#key && this.#pc && !this.broken) return;
    if (wanted.length === 0) {
      if (this.#pc) await this.link.request({ type: 'unsubscribe', identity: this.participant.identity });
      this.#replaceLeg(undefined, '', new Map());
      return;
    }
    const pc = new RTCPeerConnection(this.link.rtcConfig);
    const mapping = new Map<RTCRtpTransceiver, RemoteTrackPublication>();
    for (const pub of wanted) mapping.set(pc.addTransceiver(pub.kind, { direction: 'recvonly' }), pub);
    pc.addEventListener('track', (ev) => {
      const pub = mapping.get(ev.transceiver);
      if (!pub || this.#pc !== pc) return;
      pub.setTrack(ev.track, ev.receiver);
      this.link.subscribed(ev.track, pub, this.participant);
    });
    try {
      const identity = this.participant.identity;
      const offer = await offerFor(pc, this.link.trickle({ subscription: identity }));
      // Each section names its track: with a camera and a screen there are two videos.
      const trackIds = wanted.map((t) => t.trackId);
      const answered = this.link.request({ type: 'subscribe', identity, sdp: offer.sdp, trackIds });
      offer.started();
      const reply = await answered;
      if (reply.type !== 'subscribed')
        throw new ChorusError('failed', `'subscribe' answered with '${reply.type}'`);
      if (this.#closed) throw new ChorusError('closed', 'unsubscribed meanwhile');
      this.#replaceLeg(pc, key, mapping);
      await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
    } catch (err) {
      if (this.#pc === pc) this.#replaceLeg(undefined, '', new Map());
      else pc.close();
      throw err;
    }
  }

  /** Swaps in a new leg; tracks of the old one that the new one does not carry are unsubscribed. */
  #replaceLeg(
    pc: RTCPeerConnection | undefined,
    key: string,
    mapping: Map<RTCRtpTransceiver, RemoteTrackPublication>,
  ): void {
    const old = this.#pc;
    const carried = new Set(mapping.values());
    for (const pub of this.#byTransceiver.values()) {
      if (carried.has(pub) || !pub.track) continue;
      const track = pub.track;
      pub.setTrack(undefined);
      this.link.unsubscribed(track, pub, this.participant);
    }
    this.#byTransceiver.clear();
    for (const [t, pub] of mapping) this.#byTransceiver.set(t, pub);
    this.#pc = pc;
    this.#key = key;
    this.#leg.reset();
    old?.close();
  }
}
