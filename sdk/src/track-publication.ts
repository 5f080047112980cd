import { AdaptiveVideo, type VideoSettings } from './adaptive-video.js';
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

  /** The elements `attach` put the track in. */
  readonly #elements = new Set<HTMLMediaElement>();
  /** Adaptive stream (videos): where it is shown becomes the server's `trackSettings`. */
  #adaptive: AdaptiveVideo | undefined;
  /** Sends `trackSettings` for this track; set by the room. */
  #sendSettings: ((s: VideoSettings) => boolean) | undefined;

  /**
   * Shows the track in `element` (a new `<video>` or `<audio>` when absent) and returns
   * it; a renegotiated track replaces it there. For a video, the element's size and
   * visibility choose what the server sends (adaptive stream): a small tile gets a small
   * simulcast layer, a hidden or scrolled-away one nothing, until it shows again.
   */
  attach(element?: HTMLMediaElement): HTMLMediaElement {
    const el = element ?? document.createElement(this.kind === 'video' ? 'video' : 'audio');
    el.autoplay = true;
    if (el instanceof HTMLVideoElement) el.playsInline = true;
    if (this.#track) el.srcObject = new MediaStream([this.#track]);
    this.#elements.add(el);
    if (this.kind === 'video') this.#video().observe(el);
    return el;
  }

  /** Takes the track out of `element` (of every element when absent); returns those elements. */
  detach(element?: HTMLMediaElement): HTMLMediaElement[] {
    const out = element ? [element].filter((e) => this.#elements.has(e)) : [...this.#elements];
    for (const el of out) {
      this.#elements.delete(el);
      el.srcObject = null;
      this.#adaptive?.unobserve(el);
    }
    return out;
  }

  /**
   * The size (CSS pixels x devicePixelRatio, i.e. device pixels) this video is shown at,
   * when the application draws it itself (a canvas) or wants to override its elements';
   * undefined: from the attached elements again. The server sends the smallest layer at
   * least that large.
   */
  setVideoSize(width: number, height: number): void;
  setVideoSize(size: undefined): void;
  setVideoSize(width: number | undefined, height = 0): void {
    this.#video().setVideoSize(width === undefined ? undefined : { width, height });
  }

  /** Whether this video is wanted at all: false stops the server sending it (until true). */
  setEnabled(enabled: boolean): void {
    this.#video().setEnabled(enabled);
  }

  /** What the server is asked for about this video (size in device pixels, active). */
  get videoSettings(): VideoSettings | undefined {
    return this.#adaptive?.settings;
  }

  /** @internal The room's way to send `trackSettings` about this track. */
  bindSettings(send: (s: VideoSettings) => boolean): void {
    this.#sendSettings = send;
  }

  #video(): AdaptiveVideo {
    this.#adaptive ??= new AdaptiveVideo((s) => {
      if (!this.#track || !this.#sendSettings) return false;
      return this.#sendSettings(s);
    });
    return this.#adaptive;
  }

  /** @internal */
  setTrack(track: MediaStreamTrack | undefined, receiver?: RTCRtpReceiver): void {
    this.#track = track;
    this.#receiver = track ? receiver : undefined;
    for (const el of this.#elements) el.srcObject = track ? new MediaStream([track]) : null;
    // A new leg starts with the server's defaults: say again what differs.
    if (track) this.#adaptive?.newLeg();
  }

  /** @internal The track is gone for good: stop observing its elements. */
  close(): void {
    this.#adaptive?.close();
    this.#adaptive = undefined;
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
