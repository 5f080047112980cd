import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { Engine } from '../engine/engine.js';
import { announcedAddress } from '../media/webrtc/peer-config.js';
import type { Ports } from '../ports/ports.js';

/** The engine on the ports, each part given its slice of the config. */
export function buildEngine(
  config: Config,
  ports: Ports,
  log: Logger,
  admission: () => string | undefined,
): Engine {
  return new Engine(ports, log, {
    stream: {
      cacheBytes: config.stream.gopCacheSizeMb * 1024 * 1024,
      cacheMode: config.stream.cacheMode,
      policy: {
        receiverQueueBytes: config.stream.receiverQueueBytes,
        slowReceiver: config.stream.slowReceiver,
      },
    },
    webrtc: {
      udpPort: config.webrtc.udpPort,
      portRange: config.webrtc.portRange,
      bindAddress: config.webrtc.bindAddress,
      announcedAddress: announcedAddress(config.network.externalIp, config.webrtc.bindAddress, log),
      nackHistoryPackets: config.webrtc.nackHistoryPackets,
      keyframeIntervalMs: config.webrtc.keyframeIntervalMs,
      videoCodecs: config.webrtc.videoCodecs,
      peerTimeoutMs: config.webrtc.peerTimeoutSeconds * 1000,
      maxPeers: config.webrtc.maxPeers,
      admission,
    },
    audio: {
      opus: { bitrate: config.voip.opusBitrate, complexity: config.voip.opusComplexity },
      backlogMs: config.voip.oggBacklogMs,
    },
  });
}
