import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { gaugeAtScrape } from '../lib/scrape-metrics.js';
import { subjectToken, type Bus } from '../ports/bus/bus.js';
import { pingSubject, type Membership } from '../ports/membership/membership.js';

const PING_EVERY_MS = 5000;
const PING_TIMEOUT_MS = 2000;

/**
 * Cluster size and bus latency for /metrics. Every 5 s this node pings each live node
 * (itself included: on one node that is the in-process bus) on `chorus.node.<id>.ping`
 * and records the round trip, so the histogram is what one bus request/reply costs
 * between nodes, without touching any client's path. Returns the stop function.
 */
export function registerClusterMetrics(
  registry: Registry,
  membership: Membership,
  bus: Bus,
  log: Logger,
): () => void {
  gaugeAtScrape(
    registry,
    'chorus_cluster_nodes',
    'Live Chorus nodes this node sees (itself included).',
    () => membership.nodes().length,
  );
  const rtt = new Histogram({
    name: 'chorus_cluster_bus_rtt_seconds',
    help: 'Round trip of a bus request/reply to each live node (ping every 5 s).',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'chorus_cluster_ping_failures_total',
    help: 'Pings to live nodes that got no answer (timeout, no responder, bus unavailable).',
    registers: [registry],
  });
  let inFlight = false;
  const round = async (): Promise<void> => {
    inFlight = true;
    await Promise.all(
      membership.nodes().map(async (node) => {
        const start = performance.now();
        try {
          await bus.request(pingSubject(subjectToken(node.id)), '', { timeoutMs: PING_TIMEOUT_MS });
          rtt.observe((performance.now() - start) / 1000);
        } catch (err) {
          failures.inc();
          log.debug({ node: node.id, err: String(err) }, 'cluster ping failed');
        }
      }),
    );
    inFlight = false;
  };
  const timer = setInterval(() => {
    if (!inFlight) void round();
  }, PING_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
