import { ChorusError } from './errors.js';
import type { ClientMessage, ServerMessage, TrackInfo, TrackKind, TrackSource } from './protocol.js';
import { MAIN_PC, PublisherConnection } from './publisher-connection.js';
import { simulcastEncodings } from './simulcast-encodings.js';
import type { LocalTrackPublication } from './track-publication.js';
import type { TrickleSend } from './trickle.js';

/** What the local participant needs of its room (kept narrow: no cycle with Room). */
export interface LocalParticipantLink {
  readonly identity: string;
  readonly rtcConfig: RTCConfiguration | undefined;
  /** Sends a request over the current signalling session; rejects when not connected. */
  request(msg: ClientMessage): Promise<ServerMessage>;
  /** True while a signalling session is up (not reconnecting or left). */
  connected(): boolean;
  /** Sends a leg's trickled candidates; undefined when the server takes none. */
  trickle(target: { pc: string }): TrickleSend;
  published(publication: LocalTrackPublication): void;
  unpublished(publication: LocalTrackPublication): void;
  muteChanged(publication: LocalTrackPublication): void;
  failed(err: unknown): void;
}

export interface PublishOptions {
  /** Where the media comes from (default: microphone for audio, camera for video). */
  source?: TrackSource;
  /**
   * Send a video in three simulcast layers (q/h/f at 1/4, 1/2 and full size) so each
   * subscriber gets the one it shows, and layers nobody receives are paused. Default: on
   * for a camera (whose shorter side is at least 360 pixels), off for a screen share.
   */
  simulcast?: boolean;
}

/**
 * Me in the room: my published tracks and the publisher RTCPeerConnections that carry
 * them: the main one (microphone, camera) and, next to it, a screen share's own one, so
 * camera and screen go out at once. Each takes at most one audio and one video track.
 */
export class LocalParticipant {
  /** My published tracks on the main peer connection, by kind ('audio', 'video'). */
  readonly tracks = new Map<TrackKind, LocalTrackPublication>();
  /** My screen share's tracks (source `screen`), by kind: its own peer connection. */
  readonly screenTracks = new Map<TrackKind, LocalTrackPublication>();
  readonly #main: PublisherConnection;
  readonly #screen: PublisherConnection;
  /**
   * A simulcast camera's own peer connection (its publication in `tracks` too): the SFU
   * takes rid simulcast only from a video alone on its connection (docs/sfu.md, limits).
   */
  readonly #camera: PublisherConnection;

  constructor(private readonly link: LocalParticipantLink) {
    this.#main = new PublisherConnection(link, MAIN_PC, this.tracks);
    this.#screen = new PublisherConnection(link, 'screen', this.screenTracks);
    this.#camera = new PublisherConnection(link, 'camera', this.tracks);
  }

  get #all(): PublisherConnection[] {
    return [this.#main, this.#camera, this.#screen];
  }

  get identity(): string {
    return this.link.identity;
  }

  /** @internal The main publisher peer connection (for stats). */
  get peerConnection(): RTCPeerConnection | undefined {
    return this.#main.peerConnection;
  }

  /** @internal A simulcast camera's own publisher peer connection (for stats). */
  get cameraPeerConnection(): RTCPeerConnection | undefined {
    return this.#camera.peerConnection;
  }

  /** @internal The screen share's publisher peer connection (for stats). */
  get screenPeerConnection(): RTCPeerConnection | undefined {
    return this.#screen.peerConnection;
  }

  /** Every track I publish, on either peer connection. */
  allTracks(): LocalTrackPublication[] {
    return [...this.tracks.values(), ...this.screenTracks.values()];
  }

  /**
   * Publishes `track`. A source `screen` goes on its own peer connection next to the
   * camera's; a second track of the same kind on the same one replaces the first.
   * Resolves once the server answered.
   */
  async publishTrack(track: MediaStreamTrack, options: PublishOptions = {}): Promise<LocalTrackPublication> {
    const kind = track.kind as TrackKind;
    if (kind !== 'audio' && kind !== 'video')
      throw new ChorusError('failed', `cannot publish a '${track.kind}' track`);
    if (!this.link.connected())
      throw new ChorusError('closed', 'not connected (reconnecting or left): publish once connected');
    const source = options.source ?? (kind === 'audio' ? 'microphone' : 'camera');
    const simulcast = options.simulcast ?? source === 'camera';
    if (source === 'screen') return this.#screen.publish(track, kind, source, simulcast);
    // A video sent in layers goes on its own connection, the microphone stays on the main one.
    const settings = kind === 'video' ? track.getSettings() : {};
    const layered = simulcast && simulcastEncodings(settings.width ?? 0, settings.height ?? 0) !== undefined;
    const [to, other] = layered ? [this.#camera, this.#main] : [this.#main, this.#camera];
    const before = other.wantedTrack(kind);
    if (before) await other.unpublish(before);
    return to.publish(track, kind, source, layered);
  }

  /** Stops publishing `track` (the others go on). */
  async unpublishTrack(track: MediaStreamTrack): Promise<void> {
    for (const c of this.#all) if (c.has(track)) await c.unpublish(track);
  }

  /**
   * Mutes or unmutes one of my tracks (by the track, its source or its kind; a kind is
   * the main peer connection's): the sender stops sending and the server tells everyone.
   */
  async setMuted(which: MediaStreamTrack | TrackSource | TrackKind, muted: boolean): Promise<void> {
    for (const c of this.#all) {
      const kind = c.find(which);
      if (kind) return c.setMuted(kind, muted);
    }
    throw new ChorusError('not_found', `no published track for ${describe(which)}`);
  }

  /** @internal The server muted or unmuted one of my tracks (the room service did). */
  mutedByServer(trackId: string, muted: boolean): void {
    for (const c of this.#all) {
      const kind = [...c.tracks].find(([, p]) => p.trackId === trackId)?.[0];
      if (kind) c.applyMute(kind, muted);
    }
  }

  /** @internal The server's `layersWanted` about one of my tracks: pause or resume its layers. */
  layersWanted(trackId: string, layers: ReadonlyArray<{ rid: string; active: boolean }>): void {
    for (const c of this.#all) if (c.layersWanted(trackId, layers)) return;
  }

  /** @internal The server's `trackPublished` about one of mine: its media arrives (the codec is known now). */
  trackTookEffect(info: TrackInfo): void {
    const pub = this.allTracks().find((p) => p.trackId === info.id);
    pub?.update({ ...info, muted: pub.muted });
  }

  /** @internal After a reconnect: publish again on a new leg when the old one did not survive. */
  resume(force: boolean): void {
    for (const c of this.#all) c.resume(force);
  }

  /** @internal Checks the legs now and then; one down for a while (LegWatch) is made again. */
  watch(now: number): void {
    for (const c of this.#all) c.watch(now);
  }

  /** @internal Leaving: closes the legs; the captured tracks are the application's to stop. */
  close(): void {
    for (const c of this.#all) c.close();
  }
}

function describe(which: MediaStreamTrack | string): string {
  return typeof which === 'string' ? `'${which}'` : `track ${which.id}`;
}
