import { availableParallelism } from 'node:os';
import type { Config } from '../config/schema.js';
import { StartupError } from './startup-error.js';

/** One worker of `--processes N`: its index, its node id and the settings that make it its own node. */
export interface WorkerPlan {
  readonly index: number;
  readonly nodeId: string;
  /** The WebRTC UDP port (or the first of its range) it announces. */
  readonly udpPort: number;
  /** Environment on top of the supervisor's (the environment wins over every other source). */
  readonly env: Readonly<Record<string, string>>;
}

const MAX_NODE_ID = 64;

/** `CHORUS_PROCESSES` / `--processes` as a count: `auto` is one per core. */
export function processCount(setting: Config['cluster']['processes']): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/**
 * What makes each of N processes on one machine its own cluster node while the HTTP(S)
 * ports stay shared (Node's cluster module hands their connections round-robin):
 * - node id `<machine id>-<index>`: the machine's id is `CLUSTER_NODE_ID` or the one kept
 *   in `DATA_DIR/node-id`, so a restarted worker (or machine) is the same node again, and
 *   two machines running `--processes` never collide;
 * - WebRTC UDP port `WEBRTC_UDP_PORT + index` (0 stays 0), or an equal slice of
 *   `WEBRTC_PORT_RANGE` each: libdatachannel binds its own socket, which Node cannot share;
 * - `METRICS_PORT + index` when /metrics has its own port, so each worker can be scraped;
 * - the one NATS URL. `DATA_DIR` is shared: with NATS, a node writes nothing there (the
 *   store is JetStream; the node id file is only read when CLUSTER_NODE_ID is unset).
 * A plan that cannot work (ports past 65535, a range too small, an id too long) is a
 * StartupError.
 */
export function planWorkers(config: Config, count: number, machineId: string, natsUrl: string): WorkerPlan[] {
  const idLength = `${machineId}-${count - 1}`.length;
  if (idLength > MAX_NODE_ID) {
    throw new StartupError(
      `node id ${machineId} is too long for ${count} processes (ids are <id>-<index>, at most ${MAX_NODE_ID} characters): set a shorter CLUSTER_NODE_ID`,
    );
  }
  const ranges = config.webrtc.portRange ? sliceRange(config.webrtc.portRange, count) : undefined;
  const base = config.webrtc.udpPort;
  if (!ranges && base !== 0 && base + count - 1 > 65535) {
    throw new StartupError(
      `${count} processes need WebRTC UDP ports ${base}-${base + count - 1}, past 65535: set a lower WEBRTC_UDP_PORT`,
    );
  }
  const metricsPort = config.metrics.port;
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort + count - 1 > 65535) {
    throw new StartupError(
      `${count} processes need metrics ports ${metricsPort}-${metricsPort + count - 1}, past 65535: set a lower METRICS_PORT`,
    );
  }
  return Array.from({ length: count }, (_, index) => {
    const nodeId = `${machineId}-${index}`;
    const range = ranges?.[index];
    const udpPort = range ? range[0] : base === 0 ? 0 : base + index;
    const env: Record<string, string> = {
      CHORUS_PROCESSES: '1',
      CLUSTER_NATS_URL: natsUrl,
      CLUSTER_NODE_ID: nodeId,
      WEBRTC_UDP_PORT: String(udpPort),
    };
    if (range) env.WEBRTC_PORT_RANGE = `${range[0]}-${range[1]}`;
    if (metricsPort !== undefined && metricsPort !== 0) env.METRICS_PORT = String(metricsPort + index);
    return { index, nodeId, udpPort, env };
  });
}

/** `first-last` cut into `count` equal slices (the remainder unused); each at least one port. */
function sliceRange(range: string, count: number): Array<[number, number]> {
  const [first, last] = range.split('-').map(Number) as [number, number];
  const size = Math.floor((last - first + 1) / count);
  if (size < 1) {
    throw new StartupError(
      `WEBRTC_PORT_RANGE ${range} has fewer ports than the ${count} processes that share it: widen it`,
    );
  }
  return Array.from({ length: count }, (_, i) => [first + i * size, first + (i + 1) * size - 1]);
}
