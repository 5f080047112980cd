import { performance } from 'node:perf_hooks';
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Ports } from '../ports/ports.js';
import type { NodeLoad } from '../ports/membership/membership.js';
import { registerClusterMetrics } from './cluster-metrics.js';
import { mountClusterRoutes } from './cluster-routes.js';
import type { EventLoopLoad } from './event-loop-load.js';
import type { ServerMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';
import type { WebSocketTracker } from './websocket-tracker.js';

export interface ClusterSetup {
  /** Once listening: tells the other nodes this node's URL, WebRTC port and load. */
  announce(httpUrl: string, load: EventLoopLoad | undefined): void;
  stop(): void;
}

/**
 * What the server adds to the membership port: the cluster in /readyz (`details.cluster`)
 * and /metrics, `GET /cluster/nodes` for operators, and this node's own details in its
 * announcement. The same on one node (a cluster of itself) as on many.
 */
export function setupCluster(
  app: FastifyInstance,
  parts: {
    config: Config;
    ports: Ports;
    metrics: ServerMetrics;
    readiness: Readiness;
    tracker: WebSocketTracker;
    adminGuard: preHandlerAsyncHookHandler;
    log: Logger;
  },
): ClusterSetup {
  const { config, ports, metrics, readiness, tracker, log } = parts;
  const membership = ports.membership;
  readiness.detail('cluster', () => {
    const nodes = membership.nodes();
    return { node: membership.selfId, nodes: nodes.length, ids: nodes.map((n) => n.id).sort() };
  });
  const stopMetrics = registerClusterMetrics(metrics.registry, membership, ports.bus, log);
  mountClusterRoutes(app, membership, parts.adminGuard);
  return {
    announce(httpUrl, load) {
      const { externalIp, externalPort } = config.network;
      const url = externalIp ? withHost(httpUrl, externalIp, externalPort) : httpUrl;
      const webrtcOn = config.bluesky.enabled || config.beep.enabled;
      const address = externalIp ?? config.webrtc.bindAddress ?? new URL(httpUrl).hostname;
      // With a port range, each leg has its own port: the first one stands for the range.
      const range = config.webrtc.portRange;
      const udpPort = range ? Number(range.split('-')[0]) : config.webrtc.udpPort;
      membership.describe({
        httpUrl: url,
        ...(webrtcOn ? { webrtc: { address, udpPort } } : {}),
        load: loadProbe(tracker, load),
      });
    },
    stop: stopMetrics,
  };
}

function withHost(url: string, host: string, port: number | undefined): string {
  const u = new URL(url);
  u.hostname = host;
  if (port !== undefined) u.port = String(port);
  return u.origin;
}

/** The load each heartbeat carries: open sockets and event-loop use since the last beat. */
function loadProbe(tracker: WebSocketTracker, load: EventLoopLoad | undefined): () => NodeLoad {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const own = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    // Two calls in one tick measure nothing (0 / 0): NaN would not survive JSON.
    const busy = load?.utilization ?? own;
    return {
      connections: tracker.size,
      eventLoopUtilization: Number.isFinite(busy) ? Math.min(1, Math.max(0, busy)) : 0,
    };
  };
}
