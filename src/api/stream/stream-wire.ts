/**
 * The ws-stream-server's wire texts (seed 002, protocols/stream.md). Clients of the
 * original compare these strings, so they are spelled exactly.
 */
export const StreamText = {
  tooManyRequests: 'Too many requests.',
  invalidChannel: 'Invalid channel.',
  invalidKey: 'Invalid key.',
  invalidKind: 'Invalid connection kind.',
  alreadyPublishing: 'Already publishing.',
  publishDenied: 'Invalid Key.',
  notWhitelisted: 'Cannot play: Not whitelisted.',
  notFound: 'Not found.',
  /** Chorus: the cluster's store is out of reach, so no node can tell who publishes. */
  unavailable: 'Service unavailable: the cluster store is out of reach.',
  banner: 'Websocket streaming server - Version 1.0.0',
  heartbeat: 'h',
  invalidStreamingKey: 'ERROR: Invalid streaming key',
} as const;

export const STREAM_KINDS = ['publish', 'receive', 'receive-clear-cache', 'probe'] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

export function isStreamKind(s: string): s is StreamKind {
  return (STREAM_KINDS as readonly string[]).includes(s);
}

/** Channel and key: lowercase letters, digits, `-`, `_` (the README's rule), 1..max. */
export function validStreamId(id: string, maxLength: number): boolean {
  return id.length > 0 && id.length <= maxLength && /^[a-z0-9_-]+$/.test(id);
}

/** Close codes Chorus sends where the original cut the TCP connection. */
export const StreamClose = {
  publisherEnded: { code: 1000, reason: 'stream ended' },
  probeDone: { code: 1000, reason: 'probe done' },
  killed: { code: 1000, reason: 'stream killed' },
  invalidKey: { code: 1008, reason: 'Invalid streaming key' },
  receiverSentData: { code: 1003, reason: 'receivers cannot send binary data' },
  tooSlow: { code: 1013, reason: 'receiver too slow' },
  idle: { code: 1001, reason: 'idle timeout' },
  tooBig: { code: 1009, reason: 'message too big' },
} as const;
