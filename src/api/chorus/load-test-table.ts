/** What one WHEP subscriber of a load test received, measured over its whole session. */
export interface SubscriberResult {
  joinMs: number;
  /** Lost / expected packets, by RTP sequence numbers, audio and video together, in %. */
  lossPercent: number;
  /** Video interarrival jitter (RFC 3550), ms. */
  jitterMs: number;
  /** Received bitrate (RTP packets, headers included), kbit/s. */
  kbps: number;
  packets: number;
}

export interface LoadTestResult {
  url: string;
  room: string;
  seconds: number;
  videoKbps: number;
  publishers: { wanted: number; joinMs: number[]; failures: string[]; packetsSent: number };
  subscribers: { wanted: number; results: SubscriberResult[]; failures: string[] };
}

/** The value at quantile `q` (0-1) of `values`, nearest rank; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

const fixed = (v: number, digits: number): string => (Number.isNaN(v) ? '-' : v.toFixed(digits));

/**
 * The load test's report: one row per measure, its min, median (p50), p99 and max over
 * the participants it applies to (joins: each; loss, jitter, bitrate: each subscriber).
 */
export function formatLoadTest(r: LoadTestResult): string {
  const subs = r.subscribers.results;
  const rows: Array<[string, number[], number]> = [
    ['publisher join (ms)', r.publishers.joinMs, 0],
    ['subscriber join (ms)', subs.map((s) => s.joinMs), 0],
    ['packets lost (%)', subs.map((s) => s.lossPercent), 2],
    ['jitter (ms)', subs.map((s) => s.jitterMs), 1],
    ['received (kbit/s)', subs.map((s) => s.kbps), 0],
  ];
  const table = [['MEASURE', 'MIN', 'P50', 'P99', 'MAX']];
  for (const [name, values, digits] of rows) {
    table.push([
      name,
      ...[0, 0.5, 0.99, 1].map((q) => fixed(q === 0 ? Math.min(...values) : quantile(values, q), digits)),
    ]);
  }
  // Math.min of nothing is Infinity: an empty row reads '-' like the quantiles.
  for (const row of table) if (row[1] === 'Infinity') row[1] = '-';
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = [
    `chorus load-test: ${r.url} room ${r.room}, ${r.seconds} s, video ${r.videoKbps} kbit/s + audio`,
    `publishers ${r.publishers.joinMs.length}/${r.publishers.wanted} joined, subscribers ${subs.length}/${r.subscribers.wanted} joined; ` +
      `packets sent ${r.publishers.packetsSent}, received ${subs.reduce((n, s) => n + s.packets, 0)}`,
    ...table.map((row) =>
      row
        .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
    ),
  ];
  for (const f of [...r.publishers.failures, ...r.subscribers.failures]) lines.push(`failed: ${f}`);
  return lines.join('\n') + '\n';
}
