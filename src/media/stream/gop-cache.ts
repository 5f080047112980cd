/** Bookkeeping cost the original counts per cached chunk, kept for identical limits. */
export const CHUNK_OVERHEAD_BYTES = 16;

/**
 * The stream so far, for receivers that join late: a FIFO of chunks bounded in bytes
 * (each chunk counts its length + 16), oldest dropped first. It holds references to the
 * publisher's buffers; nothing is copied.
 */
export class GopCache {
  private chunks: Buffer[] = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly limitBytes: number) {}

  get enabled(): boolean {
    return this.limitBytes > 0;
  }

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.chunks.length - this.head;
  }

  push(chunk: Buffer): void {
    if (this.limitBytes <= 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length + CHUNK_OVERHEAD_BYTES;
    while (this.bytes > this.limitBytes && this.head < this.chunks.length) {
      this.bytes -= this.chunks[this.head]!.length + CHUNK_OVERHEAD_BYTES;
      this.chunks[this.head] = EMPTY;
      this.head++;
    }
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  first(): Buffer | undefined {
    return this.head < this.chunks.length ? this.chunks[this.head] : undefined;
  }

  forEach(fn: (chunk: Buffer) => void): void {
    for (let i = this.head; i < this.chunks.length; i++) fn(this.chunks[i]!);
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.bytes = 0;
  }
}

const EMPTY = Buffer.alloc(0);
