import { ChorusError } from './errors.js';
import { LegWatch } from './leg-watch.js';
import type { ServerMessage, TrackKind, TrackSource } from './protocol.js';
import type { LocalParticipantLink } from './local-participant.js';
import { LocalTrackPublication } from './track-publication.js';
import { applyWantedLayers, simulcastEncodings } from './simulcast-encodings.js';
import { offerFor } from './trickle.js';

/** The publisher PC every client has; the protocol's `publish` without `pc`. */
export const MAIN_PC = 'main';

interface WantedTrack {
  track: MediaStreamTrack;
  source: TrackSource;
  muted: boolean;
  /** Send a video in simulcast layers (simulcast-encodings.ts) when its size allows. */
  simulcast: boolean;
  sender?: RTCRtpSender;
}

/**
 * One publisher RTCPeerConnection (the protocol's `publish.pc`): at most one audio and
 * one video track, and every change (a track added, replaced or removed, a leg that
 * failed) is a complete new negotiation on a new peer connection that replaces the old
 * one; track ids stay.
 */
export class PublisherConnection {
  readonly #wanted = new Map<TrackKind, WantedTrack>();
  #pc: RTCPeerConnection | undefined;
  #chain: Promise<void> = Promise.resolve();
  readonly #leg = new LegWatch();
  /** The server's layer changes, applied one after the other (setParameters takes turns). */
  #layers: Promise<void> = Promise.resolve();
  /** The publications this connection made (the map may be shared with another connection). */
  readonly #own = new Set<LocalTrackPublication>();

  constructor(
    private readonly link: LocalParticipantLink,
    /** This PC's name in the protocol. */
    readonly name: string,
    /** Its published tracks by kind (the participant's map, filled here). */
    readonly tracks: Map<TrackKind, LocalTrackPublication>,
  ) {}

  get peerConnection(): RTCPeerConnection | undefined {
    return this.#pc;
  }

  /** The track wanted for `kind`, if any. */
  wantedTrack(kind: TrackKind): MediaStreamTrack | undefined {
    return this.#wanted.get(kind)?.track;
  }

  has(track: MediaStreamTrack): boolean {
    return [...this.#wanted.values()].some((w) => w.track === track);
  }

  /** Sends `track` (replacing one of its kind); resolves once the server answered. */
  async publish(
    track: MediaStreamTrack,
    kind: TrackKind,
    source: TrackSource,
    simulcast = false,
  ): Promise<LocalTrackPublication> {
    this.#wanted.set(kind, { track, source, muted: false, simulcast });
    await this.#renegotiate();
    const pub = this.tracks.get(kind);
    if (!pub || pub.track !== track)
      throw new ChorusError('failed', 'the track was replaced before it was published');
    return pub;
  }

  async unpublish(track: MediaStreamTrack): Promise<void> {
    const kind = [...this.#wanted].find(([, w]) => w.track === track)?.[0];
    if (!kind) return;
    this.#wanted.delete(kind);
    await this.#renegotiate();
  }

  /** The kind of the wanted track matching `which` (the track, its source or its kind). */
  find(which: MediaStreamTrack | string): TrackKind | undefined {
    return [...this.#wanted].find(
      ([kind, w]) => w.track === which || w.source === which || kind === which,
    )?.[0];
  }

  /** Mutes or unmutes the track of `kind` here, and tells the server when `tell`. */
  async setMuted(kind: TrackKind, muted: boolean): Promise<void> {
    const wanted = this.#wanted.get(kind);
    if (!wanted || wanted.muted === muted) return;
    this.applyMute(kind, muted);
    const pub = this.tracks.get(kind);
    if (pub && this.link.connected()) await this.link.request({ type: 'mute', trackId: pub.trackId, muted });
  }

  applyMute(kind: TrackKind, muted: boolean): void {
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

  /**
   * The server's `layersWanted` for one of this connection's tracks: pauses the simulcast
   * layers nobody receives and resumes the others (dynacast). False when not one of mine.
   */
  layersWanted(trackId: string, layers: ReadonlyArray<{ rid: string; active: boolean }>): boolean {
    const kind = [...this.tracks].find(([, p]) => p.trackId === trackId)?.[0];
    const sender = kind && this.#wanted.get(kind)?.sender;
    if (!sender) return false;
    this.#layers = this.#layers
      .then(async () => {
        const params = sender.getParameters();
        if (applyWantedLayers(params.encodings, layers)) await sender.setParameters(params);
      })
      // A sender replaced meanwhile (a renegotiation) starts with every layer on.
      .catch(() => undefined);
    return true;
  }

  resume(force: boolean): void {
    if (this.#wanted.size === 0) return;
    const state = this.#pc?.connectionState;
    if (force || state === undefined || state === 'failed' || state === 'closed') void this.#renegotiate();
  }

  watch(now: number): void {
    if (this.#leg.overdue(this.#pc, now) && this.link.connected()) void this.#renegotiate();
  }

  close(): void {
    this.#pc?.close();
    this.#pc = undefined;
    this.#wanted.clear();
    for (const [kind, pub] of [...this.tracks]) if (this.#own.delete(pub)) this.tracks.delete(kind);
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
    // The main PC is the protocol's default: no `pc` on its publish (servers before named PCs).
    const pcField = this.name === MAIN_PC ? {} : { pc: this.name };
    if (this.#wanted.size === 0) {
      this.#pc = undefined;
      old?.close();
      if (old) await this.link.request({ type: 'unpublish', pc: this.name });
      this.#dropPublications(new Set());
      return;
    }
    const pc = new RTCPeerConnection(this.link.rtcConfig);
    const sources: { audio?: TrackSource; video?: TrackSource } = {};
    const stream = new MediaStream([...this.#wanted.values()].map((w) => w.track));
    for (const [kind, w] of this.#wanted) {
      const settings = w.track.getSettings();
      const sendEncodings =
        w.simulcast && kind === 'video'
          ? simulcastEncodings(settings.width ?? 0, settings.height ?? 0)
          : undefined;
      w.sender = pc.addTransceiver(w.track, {
        direction: 'sendonly',
        streams: [stream],
        ...(sendEncodings ? { sendEncodings } : {}),
      }).sender;
      if (w.muted) await w.sender.replaceTrack(null);
      sources[kind] = w.source;
    }
    let reply: ServerMessage;
    try {
      // Trickle ICE (when the server takes it): the offer goes at once, candidates after it.
      const offer = await offerFor(pc, this.link.trickle({ pc: this.name }));
      const answered = this.link.request({ type: 'publish', sdp: offer.sdp, sources, ...pcField });
      offer.started();
      reply = await answered;
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
      const id = ids[kind] ?? `${this.link.identity}-${kind}`;
      const known = this.tracks.get(kind);
      if (known && known.track === w.track && known.trackId === id) continue;
      if (known) {
        this.tracks.delete(kind);
        this.#own.delete(known);
        this.link.unpublished(known);
      }
      const pub = new LocalTrackPublication(
        { id, kind, source: w.source, codec: '', muted: w.muted },
        w.track,
      );
      this.tracks.set(kind, pub);
      this.#own.add(pub);
      this.link.published(pub);
      if (w.muted) void this.link.request({ type: 'mute', trackId: id, muted: true }).catch(() => undefined);
    }
  }

  #dropPublications(keep: ReadonlySet<TrackKind>): void {
    for (const [kind, pub] of this.tracks) {
      if (keep.has(kind) || !this.#own.has(pub)) continue;
      this.tracks.delete(kind);
      this.#own.delete(pub);
      this.link.unpublished(pub);
    }
  }
}
