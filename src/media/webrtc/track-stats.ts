import type { PublishedTrack } from './published-track.js';
import type { SimulcastTrack } from './simulcast-track.js';

/** A receiver report older than this no longer describes its leg. */
export const REPORT_FRESH_MS = 10_000;

/** How one subscriber receives a track, from its last receiver report. */
export interface SubscriberReception {
  user: string;
  /** Share of packets lost in the receiver's last report interval, in percent. */
  lossPercent: number;
  /** Packets lost since the leg began, as the receiver counts them. */
  cumulativeLost: number;
  /** Interarrival jitter, in milliseconds. */
  jitterMs: number;
  /** Age of that report; null when the receiver has not reported yet. */
  reportAgeMs: number | null;
  /**
   * Simulcast: the layer (index in `layers`) the leg receives and the one it waits for a
   * key frame of (-1: none yet), its switches, and its bandwidth limit from REMB (-1: none).
   */
  layer?: {
    current: number;
    target: number;
    switches: number;
    limitBps: number;
    /** The probe padding the leg gets now (bits/s; 0: not probing); absent without RTX (#18). */
    probeBps?: number;
    /** The receiver's last fresh REMB (bits/s; -1: none) and the highest it sent while clean. */
    rembBps: number;
    peakBps: number;
    /** The receiver reports' loss averaged over about a second (percent): what the layer choice uses. */
    avgLossPercent: number;
    /** Whether a probe runs on the leg now (absent without RTX). */
    probing?: boolean;
  };
}

export interface TrackStats {
  kind: 'audio' | 'video';
  codec: string;
  packetsIn: number;
  packetsOut: number;
  keyframeRequests: number;
  retransmissions: number;
  /** Packets lost on the way in that the SFU NACKed (each try), and those RTX repaired. */
  nacksSent: number;
  rtxRepaired: number;
  subscribers: SubscriberReception[];
  /** Simulcast: each layer (rid or SSRC) as measured here, and what its legs want sent. */
  layers?: Array<{
    name: string;
    active: boolean;
    bps: number;
    width: number;
    height: number;
    wanted: boolean;
  }>;
}

/** A published track's counters and each subscriber's reception, for a room's stats. */
export function trackStats(t: PublishedTrack, now = Date.now()): TrackStats {
  return {
    kind: t.kind,
    codec: t.codec.name,
    packetsIn: t.packetsIn,
    packetsOut: t.packetsOut,
    keyframeRequests: t.keyframeRequests,
    retransmissions: t.retransmissions,
    nacksSent: t.nacksSent,
    rtxRepaired: t.rtxRepaired,
    subscribers: t.targets.map(({ subscriber, report, layer }) => ({
      user: subscriber,
      lossPercent: Math.round(report.fractionLost * 1000) / 10,
      cumulativeLost: report.cumulativeLost,
      jitterMs: Math.round((report.jitter / t.codec.clockRate) * 10_000) / 10,
      reportAgeMs: report.at > 0 ? now - report.at : null,
      ...(t.simulcast && layer
        ? {
            layer: {
              current: layer.current,
              target: layer.target,
              switches: layer.switches,
              limitBps: Math.round(layer.limitBps),
              ...(layer.prober ? { probeBps: layer.prober.padBps, probing: layer.prober.probing } : {}),
              rembBps: Math.round(layer.estimate(now)),
              peakBps: Math.round(layer.peakBps),
              avgLossPercent: Math.round(layer.lossAvg * 1000) / 10,
            },
          }
        : {}),
    })),
    ...(t.simulcast ? { layers: simulcastLayers(t.simulcast) } : {}),
  };
}

function simulcastLayers(s: SimulcastTrack): NonNullable<TrackStats['layers']> {
  const wanted = s.wantedLayers();
  return s.layers.map((l, i) => ({
    name: s.names[i]!,
    active: l.active,
    bps: Math.round(l.bps),
    width: l.width,
    height: l.height,
    wanted: wanted[i] === true,
  }));
}

/** What the subscriber legs' receivers last reported, over every track. */
export interface ReceptionSummary {
  /** Legs with a report in the last REPORT_FRESH_MS. */
  reportingLegs: number;
  /** Mean and worst share lost in those legs' last report intervals (0 to 1). */
  meanLoss: number;
  maxLoss: number;
  /** Packets those legs' receivers say they lost since they began. */
  lostPackets: number;
}

export function summarizeReception(tracks: Iterable<PublishedTrack>, now = Date.now()): ReceptionSummary {
  const s: ReceptionSummary = { reportingLegs: 0, meanLoss: 0, maxLoss: 0, lostPackets: 0 };
  let sum = 0;
  for (const t of tracks) {
    for (const { report } of t.targets) {
      if (report.at === 0 || now - report.at > REPORT_FRESH_MS) continue;
      s.reportingLegs++;
      sum += report.fractionLost;
      s.maxLoss = Math.max(s.maxLoss, report.fractionLost);
      s.lostPackets += Math.max(0, report.cumulativeLost);
    }
  }
  s.meanLoss = s.reportingLegs > 0 ? sum / s.reportingLegs : 0;
  return s;
}
