import { randomUUID } from 'node:crypto';
import type { LocalDetails, NodeInfo } from './membership.js';
import { WIRE_PROTOCOL } from './membership.js';
import { chorusVersion } from '../../lib/chorus-version.js';

/** This process's announcement before it listens: no URL yet, no load. */
export function localInfo(id: string, protocol = WIRE_PROTOCOL): NodeInfo {
  return {
    id,
    instance: randomUUID(),
    load: { connections: 0, eventLoopUtilization: 0 },
    version: chorusVersion(),
    protocol,
    startedAt: new Date().toISOString(),
  };
}

/** The announcement with what the server told it since (URL, WebRTC port, current load). */
export function withDetails(info: NodeInfo, details: LocalDetails): NodeInfo {
  return {
    ...info,
    ...(details.httpUrl === undefined ? {} : { httpUrl: details.httpUrl }),
    ...(details.webrtc === undefined ? {} : { webrtc: details.webrtc }),
    ...(details.load ? { load: details.load() } : {}),
  };
}
