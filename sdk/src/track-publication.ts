import type { TrackInfo, TrackKind, TrackSource } from './protocol.js';

/** A track in the room: its id, kind, source and mute state as the server says them. */
export class TrackPublication {
  constructor(protected info: TrackInfo) {}

  get trackId(): string {
    return this.info.id;
  }
  get kind(): TrackKind {
    return this.info.kind;
  }
  get source(): TrackSource {
    return this.info.source;
  }
  get codec(): string {
    return this.info.codec;
  }
  get muted(): boolean {
    return this.info.muted;
  }

  /** @internal The server's newer view of the track. */
  update(info: TrackInfo): void {
    this.info = { ...info };
  }

  /** @internal */
  setMuted(muted: boolean): void {
    this.info = { ...this.info, muted };
  }
}

/** Another participant's track; `track` is set while it is subscribed (media arriving). */
export class RemoteTrackPublication extends TrackPublication {
  #track: MediaStreamTrack | undefined;

  /** The received media, once subscribed; a renegotiation may replace it (see `trackSubscribed`). */
  get track(): MediaStreamTrack | undefined {
    return this.#track;
  }
  get subscribed(): boolean {
    return this.#track !== undefined;
  }

  #receiver: RTCRtpReceiver | undefined;

  /** The receiver's statistics (inbound-rtp: framesDecoded, audioLevel, ...); undefined while unsubscribed. */
  async getStats(): Promise<RTCStatsReport | undefined> {
    return this.#receiver?.getStats();
  }

  /** @internal */
  setTrack(track: MediaStreamTrack | undefined, receiver?: RTCRtpReceiver): void {
    this.#track = track;
    this.#receiver = track ? receiver : undefined;
  }
}

/** One of my own tracks, as published. */
export class LocalTrackPublication extends TrackPublication {
  constructor(
    info: TrackInfo,
    /** The captured media being sent. */
    readonly track: MediaStreamTrack,
  ) {
    super(info);
  }
}
