import { z } from 'zod';
import type { StreamRegistry } from '../../media/stream/stream-registry.js';

/** `/stream-stats/:channel`: one channel's counters, one node's or the cluster's sum. */
export interface ChannelStats {
  publishing: boolean;
  receivers: number;
  chunksIn: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
  cacheBytes: number;
  cacheChunks: number;
  maxReceiverQueueBytes: number;
}

const COUNT = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** A node's answer as it crosses the bus (untrusted until parsed). */
export const CHANNEL_STATS = z.object({
  publishing: z.boolean(),
  receivers: COUNT,
  chunksIn: COUNT,
  bytesIn: COUNT,
  bytesOut: COUNT,
  dropped: COUNT,
  cacheBytes: COUNT,
  cacheChunks: COUNT,
  maxReceiverQueueBytes: COUNT,
});

/**
 * This node's counters of a channel (zeros when it holds nothing of it). A channel fed by
 * the relay from another node's publisher counts its receivers, output and cache here;
 * the publishing and what came in are the publisher's node's to count, once.
 */
export function localChannelStats(streams: StreamRegistry, id: string): ChannelStats {
  const c = streams.find(id);
  const own = c !== undefined && !c.relayed;
  return {
    publishing: own && c.isPublishing,
    receivers: c?.receiverCount ?? 0,
    chunksIn: own ? c.chunksIn : 0,
    bytesIn: own ? c.bytesIn : 0,
    bytesOut: c?.bytesOut ?? 0,
    dropped: c?.dropped ?? 0,
    cacheBytes: c?.cacheBytes ?? 0,
    cacheChunks: c?.cacheChunks ?? 0,
    maxReceiverQueueBytes: c?.maxQueuedBytes() ?? 0,
  };
}

/**
 * The channel across nodes: publishing when any node publishes it; receivers, bytes,
 * chunks and cache summed (each node counts what passed through it); the largest
 * receiver queue of any node.
 */
export function sumChannelStats(parts: Iterable<ChannelStats>): ChannelStats {
  const t = localZero();
  for (const p of parts) {
    t.publishing ||= p.publishing;
    t.receivers += p.receivers;
    t.chunksIn += p.chunksIn;
    t.bytesIn += p.bytesIn;
    t.bytesOut += p.bytesOut;
    t.dropped += p.dropped;
    t.cacheBytes += p.cacheBytes;
    t.cacheChunks += p.cacheChunks;
    t.maxReceiverQueueBytes = Math.max(t.maxReceiverQueueBytes, p.maxReceiverQueueBytes);
  }
  return t;
}

function localZero(): ChannelStats {
  return {
    publishing: false,
    receivers: 0,
    chunksIn: 0,
    bytesIn: 0,
    bytesOut: 0,
    dropped: 0,
    cacheBytes: 0,
    cacheChunks: 0,
    maxReceiverQueueBytes: 0,
  };
}
