import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  constructor() {
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
    });
    this.websocketsTotal = new Counter({
      name: 'chorus_websockets_total',
      help: 'WebSocket connections accepted by surface.',
      labelNames: ['surface'],
      registers: [this.registry],
    });
  }
}
