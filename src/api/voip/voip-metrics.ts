import type { Registry } from 'prom-client';
import { counterAtScrape, gaugeAtScrape } from '../../lib/scrape-metrics.js';
import type { RelayStats } from './relay-context.js';

export interface VoipStats {
  calls: number;
  callsWithMedia: number;
  rooms: number;
  eventStreams: number;
  mixers: number;
  skippedTicks: number;
  /** Opus packets encoded, Ogg pages built for live audio (shared ones once): see MixFeed. */
  opusEncodes: number;
  oggPages: number;
  oggPageCopies: number;
  /** Bus messages carrying rooms' setAudioConf notices (one per member per batch). */
  roomNoticeMessages: number;
  /** Calls and rooms mixed on another node with streams here. */
  remoteMixers: number;
  /** Listener slots freed after their streams ended, and the most freed in one turn (Departures). */
  listenerReleases: number;
  largestReleaseSlice: number;
}

/** VOIP and audio figures for /metrics, read at scrape time. */
export function registerVoipMetrics(
  registry: Registry,
  stats: () => VoipStats,
  relay: Readonly<RelayStats>,
): void {
  const gauge = (name: string, help: string, pick: (s: VoipStats) => number) =>
    gaugeAtScrape(registry, name, help, () => pick(stats()));
  gauge('chorus_voip_calls', 'VOIP calls ringing or accepted.', (s) => s.calls);
  gauge('chorus_voip_calls_with_media', 'Accepted VOIP calls (each has a mixer).', (s) => s.callsWithMedia);
  gauge('chorus_voip_rooms', 'VOIP group rooms with someone in them.', (s) => s.rooms);
  gauge('chorus_voip_event_streams', 'Open /messages event streams.', (s) => s.eventStreams);
  gauge('chorus_audio_mixers', 'Audio mixers ticking (calls and rooms).', (s) => s.mixers);
  counterAtScrape(
    registry,
    'chorus_audio_skipped_ticks_total',
    'Mixer ticks (20 ms) skipped because the event loop stalled: audio listeners lost.',
    () => stats().skippedTicks,
  );
  counterAtScrape(
    registry,
    'chorus_audio_opus_encodes_total',
    'Opus packets encoded: one per distinct mix per 20 ms, however many listen to it.',
    () => stats().opusEncodes,
  );
  counterAtScrape(
    registry,
    'chorus_audio_ogg_pages_total',
    'Ogg pages built for live audio: one per mix per flush, shared by its Ogg listeners.',
    () => stats().oggPages,
  );
  counterAtScrape(
    registry,
    'chorus_audio_ogg_page_copies_total',
    'Renumbered copies of Ogg pages, for listeners whose page numbers differ (one per mix, flush and distance).',
    () => stats().oggPageCopies,
  );
  counterAtScrape(
    registry,
    'chorus_voip_room_notice_messages_total',
    "Messages carrying rooms' setAudioConf notices: one per member per batch (a room's changes are gathered 50 ms), not per change.",
    () => stats().roomNoticeMessages,
  );
  counterAtScrape(
    registry,
    'chorus_voip_listener_releases_total',
    'Listener slots freed after their streams ended (a slice per turn of the event loop).',
    () => stats().listenerReleases,
  );
  gauge(
    'chorus_voip_listener_release_slice_max',
    'The most listener slots freed in one turn of the event loop since the start.',
    (s) => s.largestReleaseSlice,
  );
  gauge(
    'chorus_voip_relay_remote_mixers',
    'Calls and rooms mixed on another node that have streams on this one.',
    (s) => s.remoteMixers,
  );
  const counters: [keyof RelayStats, string, string][] = [
    ['bundlesSent', 'bundles_sent', 'Mix bundles (one per tick per relayed mixer) this owner published.'],
    ['mixesSent', 'mixes_sent', 'Distinct mixes in the bundles this owner published (each encoded once).'],
    [
      'bundlesReceived',
      'bundles_received',
      'Mix bundles received from owners (once per node, not per listener).',
    ],
    ['mixesReceived', 'mixes_received', 'Distinct mixes in the bundles received.'],
    ['framesSent', 'upload_frames_sent', 'Upload frames (20 ms) sent to mixers on other nodes.'],
    ['framesReceived', 'upload_frames_received', 'Upload frames (20 ms) received for mixers here.'],
    ['dropped', 'dropped', 'Relay messages dropped: malformed, or for no stream.'],
  ];
  for (const [field, name, help] of counters)
    counterAtScrape(registry, `chorus_voip_relay_${name}_total`, help, () => relay[field]);
}
