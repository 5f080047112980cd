import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { RtcConfig } from 'node-datachannel';
import type { VideoCodecName } from './codec-policy.js';

export interface WebRtcSettings {
  udpPort: number;
  portRange: string | undefined;
  bindAddress: string | undefined;
  /** Address written into host candidates; undefined keeps what libdatachannel found. */
  announcedAddress: string | undefined;
  nackHistoryPackets: number;
  keyframeIntervalMs: number;
  /** The order a room's video codec is chosen in (codec-policy.ts); absent: the default order. */
  videoCodecs?: readonly VideoCodecName[];
  /** A leg from which nothing (media or RTCP) arrives for this long is closed. */
  peerTimeoutMs: number;
  gatherTimeoutMs?: number;
  /** At most this many peer connections at once (publishers, subscribers, voices); 0: no cap. */
  maxPeers?: number;
  /** Why new peers should be refused right now (the process is overloaded), or undefined. */
  admission?: () => string | undefined;
}

/** node-datachannel's configuration for every server-side peer connection. */
export function rtcConfig(s: WebRtcSettings): RtcConfig {
  const config: RtcConfig = { iceServers: [], disableAutoNegotiation: true };
  if (s.portRange) {
    const [begin, end] = s.portRange.split('-').map(Number);
    config.portRangeBegin = begin!;
    config.portRangeEnd = end!;
  } else {
    // One UDP port for every peer connection: ICE UDP mux.
    config.enableIceUdpMux = true;
    config.portRangeBegin = s.udpPort;
    config.portRangeEnd = s.udpPort;
  }
  if (s.bindAddress) config.bindAddress = s.bindAddress;
  return config;
}

/**
 * The address to announce: EXTERNAL_IP when set; else the bind address when it is a
 * specific one; else none (host candidates for every interface, as gathered). Logged so
 * an operator behind NAT sees what clients are told.
 */
export function announcedAddress(
  externalIp: string | undefined,
  bindAddress: string | undefined,
  log: Logger,
): string | undefined {
  if (externalIp) {
    log.info({ address: externalIp }, 'WebRTC: announcing EXTERNAL_IP in ICE candidates');
    return externalIp;
  }
  if (bindAddress && bindAddress !== '0.0.0.0' && bindAddress !== '::') {
    log.info({ address: bindAddress }, 'WebRTC: announcing the bind address');
    return bindAddress;
  }
  const found = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && !i.internal)
    .map((i) => i!.address);
  log.info({ addresses: found }, 'WebRTC: host candidates on every interface (set EXTERNAL_IP behind NAT)');
  return undefined;
}
