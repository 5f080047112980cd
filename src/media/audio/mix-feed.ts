import type { MixFrame, MixListener } from './audio-mixer.js';
import { OggOpusWriter, oggPageCount, renumberOggPages } from './ogg-opus-writer.js';
import { FRAME_BYTES, FRAME_SAMPLES } from './pcm-frame.js';
import { endlessWavHeader } from './wav-header.js';

/** How a listener takes a mix: Ogg/Opus pages, an endless WAV, or bare Opus packets. */
export type FeedFormat = 'ogg' | 'wav' | 'opus';

/**
 * Where a reader's bytes go (an HTTP response, a WebSocket). A chunk may be handed to
 * many sinks and kept by each (queued in a socket): it is never changed afterwards.
 */
export interface FeedSink {
  write(chunk: Uint8Array): void;
}

/** A listener's place in a feed. */
export interface FeedReader {
  readonly format: FeedFormat;
  /** Opus pre-skip of the packets this reader gets (the WebSocket form announces it). */
  readonly preSkip: number;
  close(): void;
}

/** Work counted across feeds (for metrics and the sharing tests). */
export interface FeedCounters {
  /** Ogg pages built for live audio (shared pages count once, however many read them). */
  oggPages: number;
  /** Renumbered copies of them, one per flush per distinct page distance (see MixFeed). */
  oggPageCopies: number;
  /** WAV chunks built for live audio (each shared by every WAV reader of a feed). */
  wavChunks: number;
}

export interface MixFeedOptions {
  preSkip: number;
  /** Ticks per write to Ogg and WAV readers (VOIP_HTTP_FLUSH_MS / 20 ms); Opus: every tick. */
  flushTicks: number;
  /** Packets kept for Ogg readers who join late (0: none). */
  backlogPackets: number;
  /** Packets of the mix already sent before this feed existed (oldest first). */
  backlog?: readonly Uint8Array[];
  /** Ticks already gone in the current flush period: feeds of one mixer flush together. */
  phase?: number;
  counters?: FeedCounters;
  /** A sink threw: its reader is closed and the others go on. */
  onSinkError?: (err: unknown) => void;
  /** Called once the last reader has left. */
  onEmpty?: (feed: MixFeed) => void;
}

const WAV_HEADER = endlessWavHeader();

/**
 * Writes of a flush done in one turn of the event loop; the rest go in the next turns
 * (setImmediate). A write to a socket costs 6-14 us here: 2,000 listeners in one turn
 * held the loop 30-80 ms (#17.3), a slice about 1-2 ms.
 */
const WRITES_PER_SLICE = 128;

class Reader implements FeedReader {
  feed: MixFeed | undefined;
  /** How far this Ogg reader's page numbers run from the shared stream's. */
  offset = 0;
  /**
   * An Ogg reader that came from another feed keeps its own page numbering (its stream
   * started there): its own writer and packets. Only readers moved when their listener
   * started speaking have one.
   */
  own: { writer: OggOpusWriter; pending: Uint8Array[] } | undefined;
  /** What the flush being written still owes this reader (see MixFeed.writeSlice). */
  due: Uint8Array | undefined;

  constructor(
    readonly format: FeedFormat,
    readonly sink: FeedSink,
    readonly preSkip: number,
    private readonly onClose: (r: Reader) => void,
  ) {}

  close(): void {
    const feed = this.feed;
    if (!feed) return;
    this.feed = undefined;
    feed.remove(this);
    this.onClose(this);
  }
}

/**
 * One mix as the streams of its listeners: every tick's frame comes in once (from this
 * node's mixer, or as packets relayed from the node that mixes), and each listener
 * format is built once per flush, whatever number of listeners read it.
 *
 * Ogg: the stream has one serial number and granule clock, and one page is built per
 * flush. A joiner gets its own header pages (pages 0 and 1: libogg-based players, such
 * as Firefox's, read a first page numbered otherwise as lost data) and the recent
 * packets, then the shared pages; its page numbers thus run a fixed distance from the
 * shared ones. Readers at the same distance (who joined in the same flush, or whose
 * backlog was paginated to land there: see `oggIntro`) get the same Buffer; each other
 * distance gets one renumbered copy per flush (a copy and a CRC of a ~100-byte page).
 * WAV readers share one PCM chunk per flush; Opus readers (WebSockets) the tick's
 * packet. Joining costs one small write; a tick one encode and, per flush, one write
 * per listener.
 */
export class MixFeed implements MixListener {
  /** Ogg readers by their distance from the shared page numbers. */
  private readonly ogg = new Map<number, Set<Reader>>();
  private oggCount = 0;
  /** Ogg readers with their own numbering (moved here from another feed). */
  private readonly ownOgg = new Set<Reader>();
  private readonly wav = new Set<Reader>();
  private readonly opus = new Set<Reader>();
  /** The shared stream's numbering; its header pages are written per reader. */
  private readonly stream: OggOpusWriter;
  /** Packets since the last flush. */
  private pending: Uint8Array[] = [];
  private wavChunk: Buffer | undefined;
  private wavAt = 0;
  private ticks: number;
  /** The page distance of the Ogg reader who joined last. */
  private latestOffset: number | undefined;
  /** Recent flushed packets, oldest first, for late Ogg readers. */
  private readonly backlog: Uint8Array[];
  /** The last joiner's intro, shared by those who join before the next flush. */
  private intro: { bytes: Buffer; offset: number } | undefined;
  /** Readers owed the current flush (`due`), written a slice per turn from `written`. */
  private readonly owed: Reader[] = [];
  private written = 0;
  private slicing: NodeJS.Immediate | undefined;
  private readonly nextSlice = (): void => {
    this.slicing = undefined;
    this.writeSlice();
  };

  constructor(private readonly opts: MixFeedOptions) {
    this.backlog = opts.backlogPackets > 0 ? (opts.backlog ?? []).slice(-opts.backlogPackets) : [];
    this.ticks = (opts.phase ?? 0) % opts.flushTicks;
    // The shared stream's own header pages (0 and 1) are never built: each reader gets
    // its own (oggIntro). Its granule clock starts where the backlog it was given ends.
    this.stream = new OggOpusWriter(opts.preSkip, undefined, {
      sequence: 2,
      granule: this.backlog.length * FRAME_SAMPLES,
    });
  }

  get preSkip(): number {
    return this.opts.preSkip;
  }

  get readerCount(): number {
    return this.oggCount + this.ownOgg.size + this.wav.size + this.opus.size;
  }

  /**
   * Adds a reader: an Ogg reader is written its header pages and the backlog at once, a
   * WAV reader the endless header. `onClose` runs once when it closes.
   */
  join(format: FeedFormat, sink: FeedSink, onClose: (r: FeedReader) => void = () => {}): FeedReader {
    const reader = new Reader(format, sink, this.opts.preSkip, onClose);
    reader.feed = this;
    if (format === 'ogg') {
      sink.write(this.oggIntro(reader));
      this.addOgg(reader);
    } else if (format === 'wav') {
      sink.write(WAV_HEADER);
      this.wav.add(reader);
    } else {
      this.opus.add(reader);
    }
    return reader;
  }

  /**
   * Moves `reader` here from its feed (its listener started speaking and now hears a mix
   * without themself). Feeds of one mixer flush on the same ticks, so nothing is lost
   * or repeated; an Ogg reader keeps its stream's numbering.
   */
  adopt(r: FeedReader): void {
    const reader = r as Reader;
    const from = reader.feed;
    if (!from || from === this) return;
    // What the old feed still owes it goes first: its pages come before this feed's.
    const due = reader.due;
    reader.due = undefined;
    if (due) from.send(reader, due);
    if (reader.feed !== from) return; // that write failed: closed
    from.remove(reader);
    reader.feed = this;
    if (reader.format === 'ogg') {
      reader.own ??= from.ownStream();
      this.ownOgg.add(reader);
    } else if (reader.format === 'wav') {
      this.wav.add(reader);
    } else {
      this.opus.add(reader);
    }
  }

  /** One 20 ms frame of the mix. */
  onFrame(f: MixFrame): void {
    const packetWanted =
      this.oggCount + this.ownOgg.size + this.opus.size > 0 || this.opts.backlogPackets > 0;
    if (packetWanted) {
      const packet = f.opus();
      this.pending.push(packet);
      for (const r of this.ownOgg) r.own!.pending.push(packet);
      for (const r of this.opus) this.send(r, packet);
    }
    if (this.wav.size > 0) {
      this.wavChunk ??= Buffer.allocUnsafe(this.opts.flushTicks * FRAME_BYTES);
      f.pcm.copy(this.wavChunk, this.wavAt);
      this.wavAt += FRAME_BYTES;
    }
    if (++this.ticks >= this.opts.flushTicks) this.flush();
  }

  /** Drops every reader (the mix ended); their sinks are not told. */
  close(): void {
    for (const set of [...this.ogg.values(), this.ownOgg, this.wav, this.opus]) {
      for (const r of set) r.close();
    }
  }

  /** @internal (Reader.close and adopt) */
  remove(reader: Reader): void {
    reader.due = undefined;
    const removed =
      this.removeOgg(reader) ||
      this.ownOgg.delete(reader) ||
      this.wav.delete(reader) ||
      this.opus.delete(reader);
    if (removed && this.readerCount === 0) this.opts.onEmpty?.(this);
  }

  /**
   * Builds this flush's page (or chunk) once per format and distance and owes it to each
   * reader; the writes go a slice per turn (writeSlice), the first slice now. A reader
   * still owed the flush before (ticks caught up after a stall come in one turn) is
   * owed both, in order, in one write. Joiners between slices are not owed it: their
   * intro already ends with this flush's packets.
   */
  private flush(): void {
    this.ticks = 0;
    this.intro = undefined;
    const packets = this.pending;
    if (packets.length > 0) {
      this.pending = [];
      if (this.oggCount > 0) {
        const sequence = this.stream.position.sequence;
        const page = this.stream.audio(packets, FRAME_SAMPLES);
        if (this.opts.counters) this.opts.counters.oggPages++;
        for (const [offset, readers] of this.ogg) {
          const mine = offset === 0 ? page : this.copy(page, sequence + offset);
          for (const r of readers) this.owe(r, mine);
        }
      } else {
        this.stream.skip(packets, FRAME_SAMPLES);
      }
      for (const r of this.ownOgg) {
        const own = r.own!;
        if (own.pending.length === 0) continue;
        const page = own.writer.audio(own.pending, FRAME_SAMPLES);
        own.pending = [];
        this.owe(r, page);
      }
      this.keep(packets);
    }
    const chunk = this.wavChunk;
    if (chunk) {
      const whole = this.wavAt === chunk.length ? chunk : chunk.subarray(0, this.wavAt);
      this.wavChunk = undefined;
      this.wavAt = 0;
      if (this.opts.counters) this.opts.counters.wavChunks++;
      for (const r of this.wav) this.owe(r, whole);
    }
    this.writeSlice();
  }

  private owe(r: Reader, chunk: Uint8Array): void {
    if (r.due) {
      r.due = Buffer.concat([r.due, chunk]); // still in `owed`, not yet written
      return;
    }
    r.due = chunk;
    this.owed.push(r);
  }

  /** Writes a slice of the owed readers, and schedules the next slice if any are left. */
  private writeSlice(): void {
    const owed = this.owed;
    const end = Math.min(owed.length, this.written + WRITES_PER_SLICE);
    while (this.written < end) {
      const r = owed[this.written++]!;
      const due = r.due;
      if (!due) continue; // closed, or moved to another feed, since
      r.due = undefined;
      this.send(r, due);
    }
    if (this.written < owed.length) {
      this.slicing ??= setImmediate(this.nextSlice);
      return;
    }
    owed.length = 0;
    this.written = 0;
  }

  private copy(page: Buffer, sequence: number): Buffer {
    if (this.opts.counters) this.opts.counters.oggPageCopies++;
    return renumberOggPages(page, sequence);
  }

  private send(r: Reader, chunk: Uint8Array): void {
    try {
      r.sink.write(chunk);
    } catch (err) {
      r.close();
      this.opts.onSinkError?.(err);
    }
  }

  private keep(packets: Uint8Array[]): void {
    const max = this.opts.backlogPackets;
    if (max === 0) return;
    for (const p of packets) this.backlog.push(p);
    if (this.backlog.length > max) this.backlog.splice(0, this.backlog.length - max);
  }

  private addOgg(reader: Reader): void {
    let set = this.ogg.get(reader.offset);
    if (!set) this.ogg.set(reader.offset, (set = new Set()));
    set.add(reader);
    this.oggCount++;
  }

  private removeOgg(reader: Reader): boolean {
    const set = this.ogg.get(reader.offset);
    if (!set?.delete(reader)) return false;
    if (set.size === 0) this.ogg.delete(reader.offset);
    this.oggCount--;
    return true;
  }

  /**
   * A joiner's header pages (from page 0) and backlog pages, the last of them at the
   * shared stream's granule position; sets the reader's page distance from the shared
   * stream. The backlog can take from its fewest pages up to one page per packet: it
   * takes as many as put the reader at the distance of the latest readers, so that
   * readers joining within a backlog's length of each other share every page Buffer.
   * Otherwise it takes the fewest, which later joiners can reach the longest.
   */
  private oggIntro(reader: Reader): Buffer {
    // The same as the last joiner's until the next flush: share its bytes.
    if (this.intro) {
      reader.offset = this.intro.offset;
      return this.intro.bytes;
    }
    const at = this.stream.position;
    const backlog = this.backlog;
    const fewest = oggPageCount(backlog);
    // Pages before the shared ones: two headers and the backlog's.
    const lead = (pages: number) => 2 + pages - at.sequence;
    let pages = fewest;
    const latest = this.latestOffset;
    if (latest !== undefined && latest >= lead(fewest) && latest <= lead(backlog.length)) {
      pages = latest + at.sequence - 2;
    }
    const writer = new OggOpusWriter(this.opts.preSkip, undefined, {
      serial: at.serial,
      granule: at.granule - backlog.length * FRAME_SAMPLES,
    });
    const parts = [writer.headers()];
    // `singles` packets on a page each, then the rest on their fewest pages.
    const singles = singlesFor(backlog, pages);
    for (let i = 0; i < singles; i++) parts.push(writer.audio([backlog[i]!], FRAME_SAMPLES));
    if (singles < backlog.length) parts.push(writer.audio(backlog.slice(singles), FRAME_SAMPLES));
    reader.offset = writer.position.sequence - at.sequence;
    this.latestOffset = reader.offset;
    const bytes = Buffer.concat(parts);
    this.intro = { bytes, offset: reader.offset };
    return bytes;
  }

  /** The shared stream continued as one reader's own (with the packets not yet flushed). */
  private ownStream(): { writer: OggOpusWriter; pending: Uint8Array[] } {
    return {
      writer: new OggOpusWriter(this.opts.preSkip, undefined, this.stream.position),
      pending: this.pending.slice(),
    };
  }
}

/**
 * How many of `packets` go on a page each so that they and the rest (on its fewest pages)
 * make `pages` pages. Each packet moved to a page of its own adds 0 or 1 page, so every
 * count from the fewest to one per packet is reached: a binary search finds it.
 */
function singlesFor(packets: readonly Uint8Array[], pages: number): number {
  let lo = 0;
  let hi = packets.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (mid + oggPageCount(packets.slice(mid)) < pages) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
