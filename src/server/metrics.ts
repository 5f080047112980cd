import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One surface's WebSockets: plain counts, turned into the labelled metrics at scrape time. */
export interface SurfaceSocketCounts {
  open: number;
  total: number;
}

/**
 * One metrics registry per server instance (no process-global state), so several servers
 * in one test process do not share counters.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly websocketsOpen: Gauge<'surface'>;
  readonly websocketsTotal: Counter<'surface'>;
  /**
   * Per surface, what websocketsOpen and websocketsTotal report. A labelled `inc` hashes
   * its labels object on every call: two of them a socket opened were 2-3 % of an
   * accept's busy samples in the 10,000-connection burst (#17.1), counts are not.
   */
  private readonly socketCounts = new Map<string, SurfaceSocketCounts>();

  constructor() {
    const socketCounts = this.socketCounts;
    collectDefaultMetrics({ register: this.registry, prefix: 'chorus_' });
    this.httpRequests = new Counter({
      name: 'chorus_http_requests_total',
      help: 'HTTP requests by route pattern, method and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.httpDuration = new Histogram({
      name: 'chorus_http_request_duration_seconds',
      help: 'HTTP request duration by route pattern.',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [this.registry],
    });
    this.websocketsOpen = new Gauge({
      name: 'chorus_websockets_open',
      help: 'Open WebSocket connections by surface.',
      labelNames: ['surface'],
      registers: [this.registry],
      collect() {
        for (const [surface, counts] of socketCounts) this.set({ surface }, counts.open);
      },
    });
    this.websocketsTotal = new Counter({
      name: 'chorus_websockets_total',
      help: 'WebSocket connections accepted by surface.',
      labelNames: ['surface'],
      registers: [this.registry],
      collect() {
        // A counter only goes up: set to the running total, as from zero.
        this.reset();
        for (const [surface, counts] of socketCounts) this.inc({ surface }, counts.total);
      },
    });
  }

  /** The counts the tracker keeps for `surface` (made at its first socket). */
  websockets(surface: string): SurfaceSocketCounts {
    let counts = this.socketCounts.get(surface);
    if (!counts) this.socketCounts.set(surface, (counts = { open: 0, total: 0 }));
    return counts;
  }
}
