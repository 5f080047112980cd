import { timingSafeEqual } from 'node:crypto';
import { GopCache, type CacheMode } from './gop-cache.js';
import type { FanOutPolicy, PublisherControl, ReceiveMode, SinkEnd, StreamSink } from './stream-sink.js';

/** A receiver attached to a channel. */
export class StreamReceiver {
  /** Bytes it may run behind by right after joining: the cache replay. */
  allowance = 0;
  skipping = false;
  removed = false;
  dropped = 0;

  constructor(
    readonly sink: StreamSink,
    readonly key: string,
    readonly mode: ReceiveMode,
  ) {}
}

/**
 * Sends per turn of the event loop when a chunk goes to many receivers. A send costs
 * about 15 us, so a slice holds the loop for some milliseconds.
 */
export const FANOUT_SLICE_SENDS = 512;
/** Chunk bytes waiting for fan-out past which the publisher's socket stops being read. */
const BACKLOG_PAUSE_BYTES = 4 << 20;

interface Publishing {
  key: string;
  streamId: string;
  control: PublisherControl;
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * One channel: at most one publisher, any number of receivers, the cache. Binary chunks
 * from the publisher go to every playing receiver in order, the same buffer to all; a
 * receiver that falls behind is skipped forward or ended, never waited for.
 */
export class StreamChannel {
  private publishing: Publishing | undefined;
  private reserved = false;
  private playing: StreamReceiver[] = [];
  private readonly waiting = new Set<StreamReceiver>();
  private readonly cache: GopCache;
  /** receive-clear-cache turns the cache off for the rest of the publishing session. */
  private cacheOff = false;
  private pendingRemovals = 0;
  // Fan-out in slices: chunks waiting, the receiver the current chunk has reached, and
  // how many receivers it goes to (those that joined before it began).
  private backlog: Buffer[] = [];
  private backlogHead = 0;
  private backlogBytes = 0;
  private cursor = 0;
  private fanEnd = 0;
  private pumping = false;
  private publisherPaused = false;
  /** The publisher left while chunks still wait: it ends when they are out. */
  private endPending = false;

  bytesIn = 0;
  chunksIn = 0;
  bytesOut = 0;
  dropped = 0;

  constructor(
    readonly id: string,
    cacheBytes: number,
    private readonly policy: FanOutPolicy,
    cacheMode: CacheMode = 'auto',
  ) {
    this.cache = new GopCache(cacheBytes, cacheMode);
  }

  get isPublishing(): boolean {
    return this.publishing !== undefined;
  }

  get streamId(): string | undefined {
    return this.publishing?.streamId;
  }

  get receiverCount(): number {
    return this.playing.length - this.pendingRemovals + this.waiting.size;
  }

  get cacheBytes(): number {
    return this.cache.size;
  }

  get cacheChunks(): number {
    return this.cache.count;
  }

  /** The container the cache follows (`webm`, `mpegts`), if it recognised one. */
  get cacheFormat(): string | undefined {
    return this.cache.format;
  }

  /** The longest send queue among playing receivers, in bytes (for stats and tests). */
  maxQueuedBytes(): number {
    let max = 0;
    for (const r of this.playing) if (!r.removed) max = Math.max(max, r.sink.bufferedAmount);
    return max;
  }

  /** True when nothing holds the channel any more and it can be forgotten. */
  get idle(): boolean {
    return !this.publishing && !this.reserved && this.playing.length === 0 && this.waiting.size === 0;
  }

  /** Holds the publisher slot while the publish is authorized; false when taken. */
  reserve(): boolean {
    if (this.publishing || this.reserved) return false;
    this.reserved = true;
    return true;
  }

  unreserve(): void {
    this.reserved = false;
  }

  /** Starts publishing under a reservation; waiting receivers start now (or are refused). */
  startPublishing(key: string, streamId: string, control: PublisherControl): void {
    this.reserved = false;
    this.publishing = { key, streamId, control };
    this.cacheOff = false;
    for (const r of this.waiting) {
      this.waiting.delete(r);
      this.start(r);
    }
  }

  /** The publisher left: playing receivers end (once the backlog is out), the cache goes. */
  endPublishing(): void {
    if (!this.publishing) return;
    if (this.pumping) {
      this.endPending = true;
      return;
    }
    this.finishPublishing();
  }

  private finishPublishing(): void {
    this.publishing = undefined;
    this.publisherPaused = false;
    this.cache.clear();
    const playing = this.playing;
    this.playing = [];
    this.pendingRemovals = 0;
    for (const r of playing) {
      if (r.removed) continue;
      r.removed = true;
      r.sink.end('publisher-ended');
    }
  }

  kill(streamId: string | undefined, reason: string): boolean {
    if (!this.publishing) return false;
    if (streamId && streamId !== '*' && streamId !== this.publishing.streamId) return false;
    this.publishing.control.kill(reason);
    return true;
  }

  /**
   * The hot path: one chunk from the publisher. Small channels get it at once. Where the
   * receivers outnumber one slice, or chunks are already waiting, it joins the backlog,
   * which goes out FANOUT_SLICE_SENDS sends per turn of the event loop: one socket read
   * can hold a hundred chunks, and sending them all to 2,000 receivers at once held the
   * loop for seconds, so new connections' handshakes and every timer waited.
   */
  publish(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.chunksIn++;
    if (this.backlogCount() === 0 && this.playing.length <= FANOUT_SLICE_SENDS) {
      this.beginChunk(chunk);
      this.sendRange(chunk, 0, this.fanEnd);
      if (this.pendingRemovals > 0) this.compact();
      return;
    }
    this.backlog.push(chunk);
    this.backlogBytes += chunk.length;
    if (!this.pumping) {
      this.pumping = true;
      this.pump();
    }
    if (this.backlogBytes > BACKLOG_PAUSE_BYTES && !this.publisherPaused && this.publishing) {
      this.publisherPaused = true;
      this.publishing.control.pause?.();
    }
  }

  private backlogCount(): number {
    return this.backlog.length - this.backlogHead;
  }

  /** One slice of the backlog; the rest waits for the next turn (setImmediate: after I/O). */
  private pump(): void {
    let budget = FANOUT_SLICE_SENDS;
    while (budget > 0 && this.backlogHead < this.backlog.length) {
      const chunk = this.backlog[this.backlogHead]!;
      if (this.cursor === 0) this.beginChunk(chunk);
      const to = Math.min(this.fanEnd, this.cursor + budget);
      this.sendRange(chunk, this.cursor, to);
      budget -= Math.max(1, to - this.cursor);
      this.cursor = to;
      if (to < this.fanEnd) break;
      // Every receiver has this chunk.
      this.cursor = 0;
      this.backlog[this.backlogHead++] = EMPTY;
      this.backlogBytes -= chunk.length;
      if (this.pendingRemovals > 0) this.compact();
    }
    if (this.publisherPaused && this.backlogBytes <= BACKLOG_PAUSE_BYTES / 2) {
      this.publisherPaused = false;
      this.publishing?.control.resume?.();
    }
    if (this.backlogHead < this.backlog.length) {
      setImmediate(this.pumpLater);
      return;
    }
    this.backlog = [];
    this.backlogHead = 0;
    this.pumping = false;
    if (this.endPending) {
      this.endPending = false;
      this.finishPublishing();
    }
  }

  private readonly pumpLater = (): void => {
    if (this.pumping) this.pump();
  };

  /** A chunk starts going out: it enters the cache, and receivers that join from now on get it from there. */
  private beginChunk(chunk: Buffer): void {
    if (this.pendingRemovals > 0) this.compact();
    if (!this.cacheOff) this.cache.push(chunk);
    this.fanEnd = this.playing.length;
  }

  private sendRange(chunk: Buffer, from: number, to: number): void {
    const limit = this.policy.receiverQueueBytes;
    const playing = this.playing;
    for (let i = from; i < to; i++) {
      const r = playing[i]!;
      if (r.removed) continue;
      const queued = r.sink.bufferedAmount;
      if (r.allowance > 0 && queued <= limit) r.allowance = 0;
      if (r.skipping) {
        if (queued > limit / 2) {
          r.dropped++;
          this.dropped++;
          continue;
        }
        r.skipping = false;
      }
      if (queued > limit + r.allowance) {
        r.dropped++;
        this.dropped++;
        if (this.policy.slowReceiver === 'close') {
          this.detach(r, 'too-slow');
        } else {
          r.skipping = true;
        }
        continue;
      }
      r.sink.send(chunk);
      this.bytesOut += chunk.length;
      if (r.mode === 'probe') this.detach(r, 'probe-done');
    }
  }

  /** A receiver arrives: it starts now if the channel is live, else it waits. */
  addReceiver(sink: StreamSink, key: string, mode: ReceiveMode): StreamReceiver {
    const r = new StreamReceiver(sink, key, mode);
    if (this.publishing) this.start(r);
    else this.waiting.add(r);
    return r;
  }

  removeReceiver(r: StreamReceiver): void {
    if (this.waiting.delete(r)) return;
    if (r.removed) return;
    r.removed = true;
    this.pendingRemovals++;
    // Not while a chunk is part-way through the list: the cursor indexes it.
    if (this.cursor === 0) this.compact();
  }

  private start(r: StreamReceiver): void {
    const pub = this.publishing!;
    if (!sameKey(r.key, pub.key)) {
      r.removed = true;
      r.sink.end('invalid-key');
      return;
    }
    if (r.mode === 'probe') {
      const first = this.cacheOff ? undefined : this.cache.first();
      if (first) {
        r.sink.send(first);
        r.removed = true;
        r.sink.end('probe-done');
        return;
      }
      this.playing.push(r);
      return;
    }
    if (!this.cacheOff) {
      this.cache.forEach((chunk) => r.sink.send(chunk));
      r.allowance = this.cache.size;
      if (r.mode === 'receive-clear-cache') {
        this.cache.clear();
        this.cacheOff = true;
      }
    }
    this.playing.push(r);
  }

  private detach(r: StreamReceiver, why: SinkEnd): void {
    r.removed = true;
    this.pendingRemovals++;
    r.sink.end(why);
  }

  private compact(): void {
    this.playing = this.playing.filter((r) => !r.removed);
    this.pendingRemovals = 0;
  }
}

const EMPTY = Buffer.alloc(0);
