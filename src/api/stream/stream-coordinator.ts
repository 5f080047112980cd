import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';
import { CoordinatorClient } from './coordinator-client.js';

/**
 * The coordinator link when CONTROL_BASE_URL is set (its STREAM-KILL closes a
 * publisher; a reconnect closes them all, as the original), else undefined: standalone.
 */
export function streamCoordinator(
  config: Config['stream'],
  network: Config['network'],
  streams: StreamRegistry,
  log: Logger,
): CoordinatorClient | undefined {
  if (!config.controlBaseUrl) return undefined;
  return new CoordinatorClient(
    {
      baseUrl: config.controlBaseUrl,
      secret: config.controlSecret,
      externalIp: network.externalIp,
      externalPort: network.externalPort,
      externalSsl: network.externalSsl,
      publishTimeoutMs: config.controlPublishTimeoutSeconds * 1000,
      reconnectMaxMs: config.controlReconnectMaxSeconds * 1000,
    },
    {
      kill: (channel, streamId) => {
        const done = streams.kill(channel, streamId, 'coordinator STREAM-KILL');
        log.info({ channel, streamId, done }, 'coordinator asked to kill a stream');
      },
      connected: () => {
        const n = streams.killAll('coordinator reconnected');
        if (n > 0) log.warn({ publishers: n }, 'coordinator (re)connected: active publishers closed');
      },
    },
    log.child({ component: 'coordinator' }),
  );
}
