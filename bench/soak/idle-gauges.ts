// The server's own view of what is still open, from /metrics. After a round has dropped
// every client, each of these must come back to zero; one that does not is a leak.

/** Gauges that count live connections, legs, rooms and mixers: all 0 when nobody is connected. */
const GAUGES = [
  'chorus_websockets_open',
  'chorus_sfu_peers',
  'chorus_sfu_published_tracks',
  'chorus_voip_rooms',
  'chorus_voip_calls',
  'chorus_voip_event_streams',
  'chorus_audio_mixers',
  'chorus_beep_connections',
  'chorus_stream_publishers',
  'chorus_stream_receivers',
] as const;

export interface GaugeReading {
  /** Sum over labels of each gauge above; a gauge the server does not export is left out. */
  open: Record<string, number>;
  heapUsedBytes: number;
  eventLoopUtilization: number;
}

export async function readGauges(base: string): Promise<GaugeReading> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`/metrics: HTTP ${res.status}`);
  const open: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-z_]+)(?:\{[^}]*\})? ([-0-9.e+]+)$/.exec(line);
    if (!m || !(GAUGES as readonly string[]).includes(m[1]!)) continue;
    open[m[1]!] = (open[m[1]!] ?? 0) + Number(m[2]);
  }
  const read = (name: string): number =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([-0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    open,
    heapUsedBytes: read('chorus_nodejs_heap_size_used_bytes'),
    eventLoopUtilization: read('chorus_event_loop_utilization'),
  };
}

/** The gauges not at zero, as `name=value`. */
export function stillOpen(g: GaugeReading): string[] {
  return Object.entries(g.open)
    .filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k}=${v}`);
}

/** How long the server's count of open file descriptors must hold still to count as settled. */
const FDS_STABLE_MS = 5000;

/**
 * Polls until every gauge is zero, the event loop has quietened (below half busy over its
 * 3 s window, so the next round's joins are not refused as overload) and the server's
 * open file descriptors have not changed for 5 s (sockets the clients dropped are closed
 * a moment after the gauges fall, and the soak's own idle HTTP keep-alive connections
 * close after a few seconds); or until the deadline passes. Resolves with the last
 * reading, how long it took, and whether idle was reached.
 */
export async function awaitIdle(
  base: string,
  fds: () => number,
  timeoutMs: number,
): Promise<{ reading: GaugeReading; seconds: number; idle: boolean; fdsStable: boolean }> {
  const t0 = Date.now();
  let lastFds = -1;
  let fdsSince = Date.now();
  for (;;) {
    let reading: GaugeReading | undefined;
    try {
      reading = await readGauges(base);
    } catch {
      // A busy server may miss one scrape; the deadline bounds the wait.
    }
    const n = fds();
    if (n !== lastFds) {
      lastFds = n;
      fdsSince = Date.now();
    }
    const seconds = (Date.now() - t0) / 1000;
    const fdsStable = Date.now() - fdsSince >= FDS_STABLE_MS;
    const gaugesIdle =
      reading !== undefined && !(reading.eventLoopUtilization >= 0.5) && stillOpen(reading).length === 0;
    if (reading && gaugesIdle && fdsStable) return { reading, seconds, idle: true, fdsStable };
    if (Date.now() - t0 > timeoutMs) {
      return { reading: reading ?? (await readGauges(base)), seconds, idle: gaugesIdle, fdsStable };
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
