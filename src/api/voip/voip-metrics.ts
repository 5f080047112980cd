import type { Registry } from 'prom-client';
import { counterAtScrape, gaugeAtScrape } from '../../lib/scrape-metrics.js';

export interface VoipStats {
  calls: number;
  callsWithMedia: number;
  rooms: number;
  eventStreams: number;
  mixers: number;
  skippedTicks: number;
}

/** VOIP and audio figures for /metrics, read at scrape time. */
export function registerVoipMetrics(registry: Registry, stats: () => VoipStats): void {
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
}
