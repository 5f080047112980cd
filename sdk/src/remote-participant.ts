import type { ParticipantInfo, TrackInfo } from './protocol.js';
import type { VideoSettings } from './adaptive-video.js';
import { RemoteTrackPublication } from './track-publication.js';

/** Someone else in the room, with their tracks by id. */
export class RemoteParticipant {
  readonly tracks = new Map<string, RemoteTrackPublication>();
  #info: ParticipantInfo;

  constructor(
    info: ParticipantInfo,
    /** Sends `trackSettings` about one of their videos (adaptive stream). */
    private readonly sendSettings?: (trackId: string, s: VideoSettings) => boolean,
  ) {
    this.#info = info;
    for (const t of info.tracks) this.tracks.set(t.id, this.#publication(t));
  }

  #publication(info: TrackInfo): RemoteTrackPublication {
    const pub = new RemoteTrackPublication(info);
    const send = this.sendSettings;
    if (send) pub.bindSettings((s) => send(info.id, s));
    return pub;
  }

  get identity(): string {
    return this.#info.identity;
  }
  get name(): string {
    return this.#info.name;
  }
  get metadata(): string {
    return this.#info.metadata;
  }
  /** The cluster node the participant is connected to. */
  get node(): string {
    return this.#info.node;
  }

  /** The tracks, audio first then video (the order their subscriber sections are offered in). */
  trackList(): RemoteTrackPublication[] {
    return [...this.tracks.values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'audio' ? -1 : 1));
  }

  /** @internal Adds or updates a track; returns it and whether it is new. */
  upsertTrack(info: TrackInfo): { publication: RemoteTrackPublication; added: boolean } {
    const known = this.tracks.get(info.id);
    if (known) {
      known.update(info);
      return { publication: known, added: false };
    }
    const publication = this.#publication(info);
    this.tracks.set(info.id, publication);
    return { publication, added: true };
  }

  /** @internal */
  updateInfo(info: ParticipantInfo): void {
    this.#info = info;
  }
}
