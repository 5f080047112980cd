import { Gauge, type Registry } from 'prom-client';
import { counterAtScrape, gaugeAtScrape } from '../lib/scrape-metrics.js';
import type { SfuStats } from '../media/webrtc/sfu.js';

/**
 * SFU figures for /metrics, read from the SFU at scrape time: the per-packet path only
 * bumps plain integer fields, never a prom-client call.
 */
export function registerSfuMetrics(registry: Registry, stats: () => SfuStats): void {
  let last: SfuStats | undefined;
  let lastAt = 0;
  // One stats() per scrape, however many metrics read it.
  const read = (): SfuStats => {
    const now = Date.now();
    if (!last || now - lastAt > 100) {
      last = stats();
      lastAt = now;
    }
    return last;
  };
  new Gauge({
    name: 'chorus_sfu_peers',
    help: 'WebRTC peer connections on the SFU by role.',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const s = read();
      this.set({ role: 'publisher' }, s.publishers);
      this.set({ role: 'subscriber' }, s.subscribers);
      this.set({ role: 'voice' }, s.voices);
    },
  });
  gaugeAtScrape(
    registry,
    'chorus_sfu_published_tracks',
    'Tracks being published into the SFU.',
    () => read().publishedTracks,
  );
  new Gauge({
    name: 'chorus_sfu_subscriber_loss_ratio',
    help: "Share of packets lost in subscribers' last receiver-report interval, over the legs that reported in the last 10 s: mean and max.",
    labelNames: ['stat'],
    registers: [registry],
    collect() {
      const r = read().reception;
      this.set({ stat: 'mean' }, r.meanLoss);
      this.set({ stat: 'max' }, r.maxLoss);
    },
  });
  gaugeAtScrape(
    registry,
    'chorus_sfu_subscriber_legs_reporting',
    'Subscriber legs whose receivers sent a report in the last 10 s.',
    () => read().reception.reportingLegs,
  );
  gaugeAtScrape(
    registry,
    'chorus_sfu_subscriber_packets_lost',
    "Packets the connected subscribers' receivers report lost since their legs began (falls when legs leave).",
    () => read().reception.lostPackets,
  );
  const counter = (name: string, help: string, pick: (s: SfuStats) => number): void =>
    counterAtScrape(registry, name, help, () => pick(read()));
  counter(
    'chorus_sfu_rtp_packets_received_total',
    'RTP packets received from publishers.',
    (s) => s.packetsIn,
  );
  counter(
    'chorus_sfu_rtp_packets_forwarded_total',
    'RTP packets forwarded to subscribers.',
    (s) => s.packetsOut,
  );
  counter(
    'chorus_sfu_keyframe_requests_total',
    'Keyframe requests (PLI) sent to publishers, after throttling.',
    (s) => s.keyframeRequests,
  );
  counter(
    'chorus_sfu_rtp_packets_retransmitted_total',
    "Packets resent from a published track's history on a subscriber's NACK.",
    (s) => s.retransmissions,
  );
  registerInboundRepairCounters(counter);
  registerProbeCounters(counter);
  counter(
    'chorus_sfu_peers_refused_total',
    'New peer connections refused: the peer limit (WEBRTC_MAX_PEERS) or an overloaded event loop.',
    (s) => s.refused,
  );
  counter(
    'chorus_sfu_send_errors_total',
    'Forwarded packets the WebRTC binding refused to send (a track closing, or a transient failure).',
    (s) => s.sendErrors,
  );
  registerRelayMetrics(registry, counter, read);
}

/** Loss on publishers' way in (#18): what the SFU NACKed, what their RTX repaired. */
function registerInboundRepairCounters(
  counter: (name: string, help: string, pick: (s: SfuStats) => number) => void,
): void {
  counter(
    'chorus_sfu_nacks_sent_total',
    'Sequence numbers the SFU NACKed to publishers for packets lost on the way in (each try counts).',
    (s) => s.nacksSent,
  );
  counter(
    'chorus_sfu_rtx_repaired_total',
    "Packets lost on the way in that a publisher's RTX retransmission repaired.",
    (s) => s.rtxRepaired,
  );
}

/** Bandwidth probing (#18): the padding legs got, and how their probes ended. */
function registerProbeCounters(
  counter: (name: string, help: string, pick: (s: SfuStats) => number) => void,
): void {
  counter(
    'chorus_sfu_padding_bytes_total',
    'Probe padding sent to subscribers (padding-only RTP on their RTX SSRC), in bytes.',
    (s) => s.paddingBytes,
  );
  counter(
    'chorus_sfu_probes_started_total',
    'Bandwidth probes started: a leg held below a layer it wants by its REMB gets padding.',
    (s) => s.probesStarted,
  );
  counter(
    'chorus_sfu_probes_succeeded_total',
    "Probes after which the leg's REMB covered the next layer (the leg was switched up).",
    (s) => s.probesSucceeded,
  );
  counter(
    'chorus_sfu_probes_failed_total',
    'Probes stopped because the REMB fell or stopped rising, or the leg lost packets (the next waits longer).',
    (s) => s.probesFailed,
  );
}

/** The relay between nodes (docs/cluster.md): zero on one node. */
function registerRelayMetrics(
  registry: Registry,
  counter: (name: string, help: string, pick: (s: SfuStats) => number) => void,
  read: () => SfuStats,
): void {
  counter(
    'chorus_sfu_relay_packets_sent_total',
    'RTP packets published on the bus for other nodes (once per packet, however many nodes receive it).',
    (s) => s.relayPacketsSent,
  );
  counter(
    'chorus_sfu_relay_messages_sent_total',
    'Bus messages the relayed packets went in (the packets of one track and event-loop turn are one message).',
    (s) => s.relayMessagesSent,
  );
  counter(
    'chorus_sfu_relay_packets_received_total',
    'RTP packets received from publishers on other nodes (once per node and packet).',
    (s) => s.relayPacketsReceived,
  );
  counter(
    'chorus_sfu_relay_dropped_total',
    'Relay packets and control messages dropped as malformed.',
    (s) => s.relayDropped,
  );
  gaugeAtScrape(
    registry,
    'chorus_sfu_relayed_tracks_out',
    'Local tracks other nodes receive now.',
    () => read().relayedOut,
  );
  gaugeAtScrape(
    registry,
    'chorus_sfu_relayed_publishers_in',
    'Publishers on other nodes this node receives now (one each, however many local legs).',
    () => read().relayedIn,
  );
}
