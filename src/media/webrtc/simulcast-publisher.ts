import type { Track } from 'node-datachannel';
import { buildPli, buildRemb } from './rtp.js';
import type { LayerKeyframeSource, LayerKeying, SimulcastTrack } from './simulcast-track.js';
import type { SimulcastOffer } from './simulcast-sdp.js';

/**
 * What the SFU tells a simulcast publisher it may send (REMB), in bits/s: enough for
 * three layers of 720p VP8 (Chromium's defaults: about 0.15 + 0.5 + 1.7 Mbit/s). Without
 * transport-wide feedback the publisher's estimate comes from receiver reports (loss) and
 * REMB; a REMB in its first seconds lets it start with every layer instead of ramping up
 * from 300 kbit/s for half a minute.
 */
export const SIMULCAST_PUBLISHER_REMB_BPS = 3_000_000;
const REMB_EVERY_MS = 1_000;

/** How a simulcast section's packets are told apart, from its offer. */
export function simulcastKeying(s: SimulcastOffer): LayerKeying {
  return s.rids.length > 0
    ? { by: 'rid', rids: s.rids, extension: s.ridExtension }
    : { by: 'ssrc', ssrcs: s.ssrcs };
}

/**
 * The publisher side of a simulcast track's RTCP that the track's own receiving session
 * does not do: a PLI per layer SSRC (a key frame of the layer a leg switches to, not of
 * all of them) and a REMB every second naming the layers' SSRCs.
 */
export class PublisherLayerFeedback implements LayerKeyframeSource {
  private readonly timer: NodeJS.Timeout;
  layers: SimulcastTrack | undefined = undefined;

  constructor(
    private readonly track: Track,
    private readonly senderSsrc: number,
  ) {
    this.timer = setInterval(() => this.remb(), REMB_EVERY_MS);
    this.timer.unref();
  }

  requestLayerKeyframe(_layer: number, ssrc: number): void {
    if (ssrc !== 0) this.send(buildPli(this.senderSsrc, ssrc));
  }

  private remb(): void {
    const l = this.layers;
    if (!l) return;
    const ssrcs = l.reception.map((r) => r.ssrc).filter((s) => s !== 0);
    if (ssrcs.length > 0) this.send(buildRemb(this.senderSsrc, SIMULCAST_PUBLISHER_REMB_BPS, ssrcs));
  }

  private send(packet: Buffer): void {
    try {
      if (this.track.isOpen()) this.track.sendMessageBinary(packet);
    } catch {
      // The track closed under us: its leg is going.
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.layers = undefined;
  }
}
