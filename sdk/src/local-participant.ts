import { ChorusError } from './errors.js';
import { completeOffer } from './ice-gathering.js';
import { LegWatch } from './leg-watch.js';
import type { ClientMessage, ServerMessage, TrackInfo, TrackKind, TrackSource } from './protocol.js';
import { LocalTrackPublication } from './track-publication.js';

/** What the local participant needs of its room (kept narrow: no cycle with Room). */
export interface LocalParticipantLink {
  readonly identity: string;
  readonly rtcConfig: RTCConfiguration | undefined;
  /** Sends a request over the current signalling session; rejects when not connected. */
  request(msg: ClientMessage): Promise<ServerMessage>;
  /** True while a signalling session is up (not reconnecting or left). */
  connected(): boolean;
  published(publication: LocalTrackPublication): void;
  unpublished(publication: LocalTrackPublication): void;
  muteChanged(publication: LocalTrackPublication): void;
  failed(err: unknown): void;
}

interface WantedTrack {
  track: MediaStreamTrack;
  source: TrackSource;
  muted: boolean;
  sender?: RTCRtpSender;
}

export interface PublishOptions {
  /** Where the media comes from (default: microphone for audio, camera for video). */
  source?: TrackSource;
}

/**
 * Me in the room: my published tracks and the publisher RTCPeerConnection that carries
 * them. The protocol takes at most one audio and one video track per participant, and
 * every change (a track added, replaced or removed, a leg that failed) is a complete new
 * negotiation on a new peer connection that replaces the old one; track ids stay.
 */
export class LocalParticipant {
  /** My published tracks by kind ('audio', 'video'). */
  readonly tracks = new Map<TrackKind, LocalTrackPublication>();
  readonly #wanted = new Map<TrackKind, WantedTrack>();
  #pc: RTCPeerConnection | undefined;
  #chain: Promise<void> = Promise.resolve();
  readonly #leg = new LegWatch();

  constructor(private readonly link: LocalParticipantLink) {}

  get identity(): string {
    return this.link.identity;
  }

  /** @internal The publisher peer connection (for stats). */
  get peerConnection(): RTCPeerConnection | undefined {
    return this.#pc;
  }

  /**
   * Publishes `track`. A second track of the same kind replaces the first (say a screen
   * share instead of the camera). Resolves once the server answered.
   */
  async publishTrack(track: MediaStreamTrack, options: PublishOptions = {}): Promise<LocalTrackPublication> {
    const kind = track.kind as TrackKind;
    if (kind !== 'audio' && kind !== 'video')
      throw new ChorusError('failed', `cannot publish a '${track.kind}' track`);
    if (!this.link.connected())
      throw new ChorusError('closed', 'not connected (reconnecting or left): publish once connected');
    this.#wanted.set(kind, {
      track,
      source: options.source ?? (kind === 'audio' ? 'microphone' : 'camera'),
      muted: false,
    });
    await this.#renegotiate();
    const pub = this.tracks.get(kind);
    if (!pub || pub.track !== track)
      throw new ChorusError('failed', 'the track was replaced before it was published');
    return pub;
  }

  /** Stops publishing `track` (the other kind, if any, goes on). */
  async unpublishTrack(track: MediaStreamTrack): Promise<void> {
    const kind = [...this.#wanted].find(([, w]) => w.track === track)?.[0];
    if (!kind) return;
    this.#wanted.delete(kind);
    await this.#renegotiate();
  }

  /**
   * Mutes or unmutes one of my tracks (by the track, its source or its kind): the
   * sender stops sending and the server tells everyone (`trackMuted`).
   */
  async setMuted(which: MediaStreamTrack | TrackSource | TrackKind, muted: boolean): Promise<void> {
    const entry = [...this.#wanted].find(
      ([kind, w]) => w.track === which || w.source === which || kind === which,
    );
    if (!entry) throw new ChorusError('not_found', `no published track for ${describe(which)}`);
    const [kind, wanted] = entry;
    if (wanted.muted === muted) return;
    this.#applyMute(kind, muted);
    const pub = this.tracks.get(kind);
    if (pub && this.link.connected()) await this.link.request({ type: 'mute', trackId: pub.trackId, muted });
  }

  /** @internal The server muted or unmuted one of my tracks (the room service did). */
  mutedByServer(trackId: string, muted: boolean): void {
    const kind = [...this.tracks].find(([, p]) => p.trackId === trackId)?.[0];
    if (kind) this.#applyMute(kind, muted);
  }

  /** @internal The server's `trackPublished` about one of mine: its media arrives (the codec is known now). */
  trackTookEffect(info: TrackInfo): void {
    const pub = [...this.tracks.values()].find((p) => p.trackId === info.id);
    pub?.update({ ...info, muted: pub.muted });
  }

  /** @internal After a reconnect: publish again on a new leg when the old one did not survive. */
  resume(force: boolean): void {
    if (this.#wanted.size === 0) return;
    const state = this.#pc?.connectionState;
    if (force || state === undefined || state === 'failed' || state === 'closed') void this.#renegotiate();
  }

  /** @internal Checks the leg now and then; one down for a while (LegWatch) is made again. */
  watch(now: number): void {
    if (this.#leg.overdue(this.#pc, now) && this.link.connected()) void this.#renegotiate();
  }

  /** @internal Leaving: closes the leg; the captured tracks are the application's to stop. */
  close(): void {
    this.#pc?.close();
    this.#pc = undefined;
    this.#wanted.clear();
    this.tracks.clear();
  }

  #applyMute(kind: TrackKind, muted: boolean): void {
    const wanted = this.#wanted.get(kind);
    if (!wanted) return;
    wanted.muted = muted;
    // Off the sender, not `enabled = false`: the local preview keeps showing.
    void wanted.sender?.replaceTrack(muted ? null : wanted.track).catch(() => undefined);
    const pub = this.tracks.get(kind);
    if (pub && pub.muted !== muted) {
      pub.setMuted(muted);
      this.link.muteChanged(pub);
    }
  }

  /** One negotiation at a time, each with what is wanted when it starts. */
  #renegotiate(): Promise<void> {
    const run = this.#chain.then(() => this.#negotiate());
    this.#chain = run.catch((err: unknown) => this.link.failed(err));
    return run;
  }

  async #negotiate(): Promise<void> {
    if (!this.link.connected()) return; // resumed or rejoined later, with what is wanted then
    const old = this.#pc;
    if (this.#wanted.size === 0) {
      this.#pc = undefined;
      old?.close();
      if (old) await this.link.request({ type: 'unpublish' });
      this.#dropPublications(new Set());
      return;
    }
    const pc = new RTCPeerConnection(this.link.rtcConfig);
    const sources: { audio?: TrackSource; video?: TrackSource } = {};
    const stream = new MediaStream([...this.#wanted.values()].map((w) => w.track));
    for (const [kind, w] of this.#wanted) {
      w.sender = pc.addTransceiver(w.track, { direction: 'sendonly', streams: [stream] }).sender;
      if (w.muted) await w.sender.replaceTrack(null);
      sources[kind] = w.source;
    }
    let reply: ServerMessage;
    try {
      const sdp = await completeOffer(pc);
      reply = await this.link.request({ type: 'publish', sdp, sources });
      if (reply.type !== 'published')
        throw new ChorusError('failed', `'publish' answered with '${reply.type}'`);
      await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
    } catch (err) {
      pc.close();
      throw err;
    }
    this.#pc = pc;
    this.#leg.reset();
    old?.close();
    this.#adoptPublications(reply.trackIds);
  }

  /** Publications for what was just negotiated: new ones announced, replaced ones swapped. */
  #adoptPublications(ids: { audio?: string; video?: string }): void {
    this.#dropPublications(new Set(this.#wanted.keys()));
    for (const [kind, w] of this.#wanted) {
      const id = ids[kind] ?? `${this.identity}-${kind}`;
      const known = this.tracks.get(kind);
      if (known && known.track === w.track && known.trackId === id) continue;
      if (known) {
        this.tracks.delete(kind);
        this.link.unpublished(known);
      }
      const pub = new LocalTrackPublication(
        { id, kind, source: w.source, codec: '', muted: w.muted },
        w.track,
      );
      this.tracks.set(kind, pub);
      this.link.published(pub);
      if (w.muted) void this.link.request({ type: 'mute', trackId: id, muted: true }).catch(() => undefined);
    }
  }

  #dropPublications(keep: ReadonlySet<TrackKind>): void {
    for (const [kind, pub] of this.tracks) {
      if (keep.has(kind)) continue;
      this.tracks.delete(kind);
      this.link.unpublished(pub);
    }
  }
}

function describe(which: MediaStreamTrack | string): string {
  return typeof which === 'string' ? `'${which}'` : `track ${which.id}`;
}
