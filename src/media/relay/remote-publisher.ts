import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { BusTimeoutError, NoRespondersError, type Bus, type BusSubscription } from '../../ports/bus/bus.js';
import { busObject } from '../../lib/bus-object.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { PublishedTrack, type KeyframeSource } from '../webrtc/published-track.js';
import { SimulcastTrack } from '../webrtc/simulcast-track.js';
import { readRelayBatch } from './relay-batch.js';
import { INTEREST_REFRESH_MS, relayControlBytes } from './relay-control.js';
import { endSubject, relayControlSubject, rtpSubject } from './relay-subjects.js';
import type { Publication } from './track-directory.js';

/** Interest refreshes that may go unanswered in a row (a busy node) before giving up. */
const MAX_UNANSWERED = 3;

/** What a relayed track is built with on the receiving node: as a local track's. */
export interface RelaySettings {
  keyframeIntervalMs: number;
  nackHistoryPackets: number;
}

/**
 * A publisher on another node, as this node's subscribers see it: one stand-in
 * PublishedTrack per relayed track, fed from the track's relay subject, so forwarding is
 * the local code (SSRC and per-subscriber payload type rewrite, NACKs answered from this
 * node's own history). One per node and publisher however many local legs subscribe:
 * each packet arrives here once. While legs hold it, the node's interest is refreshed;
 * it ends (and its legs with it) when the publisher's track ends, its node is gone, or the
 * node answers that it no longer has the track.
 */
export class RemotePublisher {
  readonly tracks: PublishedTrack[] = [];
  /** Relayed packets that were not RTP (dropped before forwarding). */
  malformed = 0;
  private readonly subs: BusSubscription[] = [];
  private readonly refresh: NodeJS.Timeout;
  private readonly onCloseHandlers: Array<(reason: string) => void> = [];
  private readonly warnings: ThrottledLog;
  private readonly control: string;
  /** A simulcast track's layers this node's legs receive, by relay id. */
  private readonly wantedOf = new Map<string, () => boolean[]>();
  private holders = 0;
  private unanswered = 0;
  private closedFlag = false;

  constructor(
    private readonly bus: Bus,
    private readonly selfId: string,
    readonly user: string,
    readonly publication: Publication,
    settings: RelaySettings,
    private readonly log: Logger,
  ) {
    this.warnings = new ThrottledLog(log, 1);
    this.control = relayControlSubject(publication.node);
    for (const info of publication.tracks) {
      const relay = info.relay;
      const source: KeyframeSource = {
        isOpen: () => !this.closedFlag,
        requestKeyframe: (force) => {
          this.bus.publish(this.control, relayControlBytes({ op: 'pli', relay, force: force === true }));
          return true;
        },
      };
      const track = new PublishedTrack(
        info.kind,
        { ...info.codec, fmtp: info.codec.fmtp },
        randomInt(1, 0xffffffff),
        source,
        settings.keyframeIntervalMs,
        settings.nackHistoryPackets,
      );
      track.redPayloadType = info.red;
      if (info.layers !== undefined) {
        // Every layer comes, its index in the SSRC field; each local leg takes one.
        track.simulcast = new SimulcastTrack(
          track,
          { by: 'relay', layers: info.layers },
          {
            requestLayerKeyframe: (layer, _ssrc, force) =>
              this.bus.publish(this.control, relayControlBytes({ op: 'pli', relay, force, layer })),
          },
          settings.nackHistoryPackets,
        );
        // What this node's legs receive goes to the publisher's node (with each interest
        // refresh, and at once when it changes), so it pauses the layers no node wants.
        const layers = track.simulcast;
        layers.onWanted = () => {
          if (!this.closedFlag) void this.want();
        };
        this.wantedOf.set(relay, () => [...layers.wantedLayers()]);
      }
      this.tracks.push(track);
      const onPacket = (p: Buffer): void => this.onPacket(track, p, relay);
      // Subscribed before the first `want`, so the first packets relayed find us.
      this.subs.push(
        this.bus.subscribe(rtpSubject(relay), (msg) => {
          // Each packet forwarded as a view of the message (no copy): the track rewrites
          // its header and keeps it in its history, and nobody else reads these bytes.
          if (!readRelayBatch(msg.data, onPacket)) {
            this.malformed++;
            this.warnings.warn({ relay, bytes: msg.data.length }, 'sfu relay: malformed batch, rest dropped');
          }
        }),
        this.bus.subscribe(endSubject(relay), () => this.close('publisher left')),
      );
    }
    this.refresh = setInterval(() => void this.want(), INTEREST_REFRESH_MS);
    this.refresh.unref();
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  private onPacket(track: PublishedTrack, p: Buffer, relay: string): void {
    // RTP version 2, a whole header, not RTCP: anything else is not a relayed packet.
    if (p.length < 12 || p[0]! >> 6 !== 2 || (p[1]! >= 192 && p[1]! <= 223)) {
      this.malformed++;
      this.warnings.warn({ relay, bytes: p.length }, 'sfu relay: not an RTP packet, dropped');
      return;
    }
    track.forward(p);
  }

  get node(): string {
    return this.publication.node;
  }

  /** Packets relayed to this node, over its tracks. */
  get packetsIn(): number {
    let n = 0;
    for (const t of this.tracks) n += t.packetsIn;
    return n;
  }

  /**
   * Tells the publisher's node this node wants every track; true when the node has them
   * all. No node, or a node without the track: the publisher is gone, and this closes.
   */
  async want(): Promise<boolean> {
    if (this.closedFlag) return false;
    try {
      const answers = await Promise.all(
        this.publication.tracks.map((t) =>
          this.bus.request(
            this.control,
            relayControlBytes({
              op: 'want',
              relay: t.relay,
              node: this.selfId,
              ...(this.wantedOf.has(t.relay) ? { layers: this.wantedOf.get(t.relay)!() } : {}),
            }),
            {
              timeoutMs: 2000,
            },
          ),
        ),
      );
      this.unanswered = 0;
      if (answers.every((a) => busObject(a, 64)?.ok === true)) return !this.closedFlag;
      this.close('publisher left');
      return false;
    } catch (err) {
      if (err instanceof NoRespondersError) {
        this.close('publisher node gone');
        return false;
      }
      // A timeout or NATS down: the node may be busy; give up only after a few in a row.
      if (++this.unanswered >= MAX_UNANSWERED) this.close('publisher node not answering');
      else if (!(err instanceof BusTimeoutError)) this.log.debug({ err }, 'relay interest not sent');
      return false;
    }
  }

  /** A local leg receives these tracks; `release` when it stops. */
  hold(): void {
    this.holders++;
  }

  /** The last leg gone: the relay to this node stops. */
  release(): void {
    if (--this.holders <= 0) this.close('no subscribers left');
  }

  onClose(fn: (reason: string) => void): void {
    if (this.closedFlag) fn('closed');
    else this.onCloseHandlers.push(fn);
  }

  close(reason: string): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    clearInterval(this.refresh);
    for (const s of this.subs.splice(0)) s.unsubscribe();
    for (const info of this.publication.tracks) {
      this.bus.publish(this.control, relayControlBytes({ op: 'drop', relay: info.relay, node: this.selfId }));
    }
    for (const t of this.tracks) t.end();
    this.log.info({ reason, node: this.publication.node }, 'relayed publisher ended');
    for (const fn of this.onCloseHandlers.splice(0)) {
      try {
        fn(reason);
      } catch (err) {
        this.log.error({ err }, 'relayed publisher close handler threw');
      }
    }
  }
}
