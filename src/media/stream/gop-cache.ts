import { sniffContainer, type ContainerIndex } from './container-index.js';

/** Bookkeeping cost the original counts per cached chunk, kept for identical limits. */
export const CHUNK_OVERHEAD_BYTES = 16;

/**
 * `auto`: WebM and MPEG-TS streams are cached from their latest random-access point
 * (plus their initialisation), other streams whole; `all`: every stream whole, as the
 * original does.
 */
export type CacheMode = 'auto' | 'all';

/**
 * The stream so far, for receivers that join late: a FIFO of chunks bounded in bytes
 * (each chunk counts its length + 16), oldest dropped first. It holds references to the
 * publisher's buffers; nothing is copied.
 *
 * A WebM or MPEG-TS stream (recognised from its first byte, then followed by a
 * ContainerIndex) is cut at each random-access point: what came before it goes, and the
 * stream's initialisation is kept apart and replayed first. A late joiner then starts at
 * the latest keyframe, within one group of pictures of live, instead of at the
 * publisher's first byte. A cut lands inside a chunk as a view of it (a subarray), so
 * chunk boundaries need not match the container's.
 */
export class GopCache {
  private chunks: Buffer[] = [];
  /** Stream offset of each chunk's first byte. */
  private starts: number[] = [];
  private head = 0;
  private bytes = 0;
  /** Stream offset of the next chunk. */
  private offset = 0;
  /** undefined: not looked at yet; null: not a container the cache follows. */
  private index: ContainerIndex | null | undefined;
  private init: Buffer | undefined;
  private resume: Buffer | undefined;

  constructor(
    private readonly limitBytes: number,
    private readonly mode: CacheMode = 'auto',
  ) {}

  get enabled(): boolean {
    return this.limitBytes > 0;
  }

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.chunks.length - this.head + (this.init ? 1 : 0) + (this.resume ? 1 : 0);
  }

  /** The container recognised, if any (for stats). */
  get format(): string | undefined {
    const index = this.index;
    return index && !index.failed ? index.format : undefined;
  }

  push(chunk: Buffer): void {
    if (this.limitBytes <= 0 || chunk.length === 0) return;
    const at = this.offset;
    this.offset += chunk.length;
    this.chunks.push(chunk);
    this.starts.push(at);
    this.bytes += chunk.length + CHUNK_OVERHEAD_BYTES;
    let index = this.index;
    if (index === undefined)
      index = this.index = this.mode === 'auto' ? (sniffContainer(chunk[0]!) ?? null) : null;
    if (index !== null) {
      if (!index.failed) index.scan(chunk, at);
      // A cut found before the index gave up in this chunk still holds.
      if (index.cutAt >= 0) {
        this.cut(index.cutAt, index.init, index.resume);
        index.cutAt = -1;
      }
    }
    while (this.bytes > this.limitBytes && this.head < this.chunks.length) this.dropHead();
    // Compact now and then so the arrays do not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.starts = this.starts.slice(this.head);
      this.head = 0;
    }
  }

  /** What a probe gets: the stream's initialisation where known, else the oldest chunk. */
  first(): Buffer | undefined {
    if (this.init) return this.init;
    return this.head < this.chunks.length ? this.chunks[this.head] : undefined;
  }

  forEach(fn: (chunk: Buffer) => void): void {
    if (this.init) fn(this.init);
    if (this.resume) fn(this.resume);
    for (let i = this.head; i < this.chunks.length; i++) fn(this.chunks[i]!);
  }

  clear(): void {
    this.chunks = [];
    this.starts = [];
    this.head = 0;
    this.bytes = 0;
    this.offset = 0;
    this.index = undefined;
    this.init = undefined;
    this.resume = undefined;
  }

  /** Drops everything before stream offset `at`; `init`, then `resume`, go before what is left. */
  private cut(at: number, init: Buffer | undefined, resume: Buffer | undefined): void {
    while (this.head < this.chunks.length && this.starts[this.head]! + this.chunks[this.head]!.length <= at) {
      this.dropHead();
    }
    if (this.head < this.chunks.length) {
      const start = this.starts[this.head]!;
      if (start < at) {
        this.chunks[this.head] = this.chunks[this.head]!.subarray(at - start);
        this.starts[this.head] = at;
        this.bytes -= at - start;
      }
    }
    this.bytes += held(init) - held(this.init) + held(resume) - held(this.resume);
    this.init = init;
    this.resume = resume;
  }

  private dropHead(): void {
    this.bytes -= this.chunks[this.head]!.length + CHUNK_OVERHEAD_BYTES;
    this.chunks[this.head] = EMPTY;
    this.head++;
  }
}

const EMPTY = Buffer.alloc(0);

function held(b: Buffer | undefined): number {
  return b ? b.length + CHUNK_OVERHEAD_BYTES : 0;
}
