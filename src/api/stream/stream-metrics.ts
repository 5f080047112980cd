import { Counter, type Registry } from 'prom-client';
import { counterAtScrape, gaugeAtScrape } from '../../lib/scrape-metrics.js';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';
import type { StreamRelay } from './stream-relay.js';

export type RefusalReason =
  | 'too_many_connections'
  | 'invalid_channel'
  | 'invalid_key'
  | 'invalid_kind'
  | 'already_publishing'
  | 'publish_denied'
  | 'cluster_unavailable'
  | 'not_whitelisted';

/**
 * Stream metrics. Per-chunk counts live as plain numbers in the engine (no metric call on
 * the hot path) and are read when Prometheus scrapes.
 */
export class StreamMetrics {
  readonly refusals: Counter<'reason'>;

  constructor(
    registry: Registry,
    streams: StreamRegistry,
    relay: StreamRelay,
    coordinatorConnected: () => boolean | undefined,
  ) {
    this.refusals = new Counter({
      name: 'chorus_stream_refusals_total',
      help: 'Stream connections refused before the upgrade, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    });
    const gauge = (name: string, help: string, read: () => number): void =>
      gaugeAtScrape(registry, name, help, read);
    const counter = (name: string, help: string, read: () => number): void =>
      counterAtScrape(registry, name, help, read);
    gauge(
      'chorus_stream_channels',
      'Channels with a publisher or receivers.',
      () => streams.totals().channels,
    );
    gauge('chorus_stream_publishers', 'Channels being published.', () => streams.totals().publishers);
    gauge(
      'chorus_stream_receivers',
      'Receivers attached (playing or waiting).',
      () => streams.totals().receivers,
    );
    counter(
      'chorus_stream_received_bytes_total',
      'Bytes received from publishers.',
      () => streams.totals().bytesIn,
    );
    counter('chorus_stream_sent_bytes_total', 'Bytes sent to receivers.', () => streams.totals().bytesOut);
    counter(
      'chorus_stream_dropped_chunks_total',
      'Chunks not sent to a receiver because it was too slow.',
      () => streams.totals().dropped,
    );
    const relayed = relay.counters;
    const relayCounters: Array<[string, string, () => number]> = [
      ['sent_chunks', 'Chunks of channels published here put on the bus for other nodes (once per chunk, however many nodes follow).', () => relayed.chunksSent],
      ['sent_bytes', 'Bytes of those chunks.', () => relayed.bytesSent],
      ['sent_frames', 'Bus messages of chunk data sent (a chunk over 512 KiB goes as several; replays included).', () => relayed.framesSent],
      ['received_chunks', 'Live chunks taken from the bus for receivers here of channels published on another node.', () => relayed.chunksReceived],
      ['received_bytes', 'Bytes of those chunks.', () => relayed.bytesReceived],
      ['replays', 'Caches replayed to nodes that started following a channel published here.', () => relayed.replays],
      ['gaps', 'Relayed chunks that never arrived (skipped sequence numbers).', () => relayed.gaps],
      ['dropped', 'Relay messages dropped as malformed.', () => relayed.dropped],
    ]; // prettier-ignore
    for (const [name, help, read] of relayCounters) counter(`chorus_stream_relay_${name}_total`, help, read);
    gauge(
      'chorus_stream_relay_followers',
      'Other nodes following channels published here, summed over the channels.',
      () => relay.followers,
    );
    gauge(
      'chorus_stream_relay_following',
      'Channels published on another node that this node follows for its receivers.',
      () => relay.following,
    );
    gauge(
      'chorus_stream_coordinator_connected',
      '1 when the coordinator link is up (absent in standalone mode).',
      () => (coordinatorConnected() ? 1 : 0),
    );
  }
}
