import type { Logger } from 'pino';
import type { PublishedTrack } from './published-track.js';
import type { SimulcastTrack } from './simulcast-track.js';

/**
 * Which simulcast layers of a track its subscribers receive now, so a surface can tell
 * the publisher to pause the others (a browser: `active: false` on those encodings with
 * `RTCRtpSender.setParameters`). RTP cannot say it: a PLI or REMB never stops a layer.
 */
export interface LayersWanted {
  room: string;
  publisher: string;
  /** The room's track id (`<user>-video`). */
  track: string;
  /** Every layer in the offer's order: its rid (or `ssrc:<n>` for SSRC simulcast) and whether it is wanted. */
  layers: Array<{ name: string; wanted: boolean }>;
}

/** The SFU's "layers wanted" events: handlers are called in turn, a throwing one is logged. */
export class LayersWantedEvents {
  private readonly handlers: Array<(e: LayersWanted) => void> = [];
  /** The simulcast tracks followed, by room and track id. */
  private readonly tracks = new Map<string, { publisher: string; layers: SimulcastTrack }>();

  constructor(private readonly log: Logger) {}

  /** Calls `fn` on each change; returns a function that stops it. */
  on(fn: (e: LayersWanted) => void): () => void {
    this.handlers.push(fn);
    return () => {
      const i = this.handlers.indexOf(fn);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  /** What a track's publisher should send now, for a surface that starts forwarding late. */
  current(room: string, track: string): LayersWanted | undefined {
    const t = this.tracks.get(`${room}\u0000${track}`);
    return t && event(room, t.publisher, track, t.layers, t.layers.wantedLayers());
  }

  /** Follows a newly published track (nothing to follow when it has one encoding). */
  watch(room: string, publisher: string, track: string, t: PublishedTrack): void {
    const layers = t.simulcast;
    if (!layers) return;
    const k = `${room}\u0000${track}`;
    this.tracks.set(k, { publisher, layers });
    layers.onEnd = () => {
      if (this.tracks.get(k)?.layers === layers) this.tracks.delete(k);
    };
    layers.onWanted = (wanted) => {
      const e = event(room, publisher, track, layers, wanted);
      for (const fn of [...this.handlers]) {
        try {
          fn(e);
        } catch (err) {
          this.log.error({ err, room, track }, 'layers-wanted handler threw');
        }
      }
    };
  }
}

function event(
  room: string,
  publisher: string,
  track: string,
  layers: SimulcastTrack,
  wanted: readonly boolean[],
): LayersWanted {
  return {
    room,
    publisher,
    track,
    layers: layers.names.map((name, i) => ({ name, wanted: wanted[i] === true })),
  };
}
