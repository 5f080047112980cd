import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Metrics read from the thing measured when Prometheus scrapes, so hot paths only bump
 * plain fields and never call prom-client.
 */
export function gaugeAtScrape(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A counter whose total is kept elsewhere (a monotonic field); set to it at each scrape. */
export function counterAtScrape(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
