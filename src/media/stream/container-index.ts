import { MpegTsIndex } from './mpegts-index.js';
import { WebmIndex } from './webm-index.js';

/**
 * Follows a live container stream chunk by chunk and tells the cache where a late joiner
 * can start: the stream's initialisation bytes and the offset of the latest random-access
 * point. It reads only the few structures it needs, keeps its place across chunk
 * boundaries, and never throws: on input it cannot follow it sets `failed` and the cache
 * falls back to keeping everything (the original behaviour).
 */
export interface ContainerIndex {
  readonly format: 'webm' | 'mpegts';
  /** Reads `chunk`, whose first byte is at `at` in the stream (0 = the publisher's first byte). */
  scan(chunk: Buffer, at: number): void;
  /**
   * The latest random-access point confirmed by the last scans (a stream offset), or -1.
   * The caller resets it to -1 once it has acted on it.
   */
  cutAt: number;
  /** What a decoder needs before the bytes at `cutAt`: WebM's header up to the first Cluster, MPEG-TS's PAT and PMT. */
  readonly init: Buffer | undefined;
  /** Bytes that go between `init` and the cut for this cut only (WebM: a Cluster header when the cut is inside a Cluster). */
  readonly resume: Buffer | undefined;
  readonly failed: boolean;
}

/**
 * Picks a reader from the stream's first byte: 0x1A starts an EBML header (WebM,
 * Matroska), 0x47 is the MPEG-TS sync byte. Each reader checks the rest itself and gives
 * up on anything else; other first bytes are not indexed.
 */
export function sniffContainer(firstByte: number): ContainerIndex | undefined {
  if (firstByte === 0x1a) return new WebmIndex();
  if (firstByte === 0x47) return new MpegTsIndex();
  return undefined;
}
