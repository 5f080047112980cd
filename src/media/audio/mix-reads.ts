import type { MixListener, MixSubscription } from './audio-mixer.js';
import { MixFeed, type FeedCounters, type FeedFormat, type FeedReader, type FeedSink } from './mix-feed.js';

export interface MixReadsOptions {
  /** Subscribes one listener to the mix that `speakerId` must hear (all, when undefined). */
  listen(listener: MixListener, speakerId?: string): MixSubscription;
  /** Packets each feed keeps for late Ogg readers (0: none). */
  backlogPackets: number;
  counters?: FeedCounters;
  onSinkError?: (err: unknown) => void;
}

/**
 * Shared listening streams over any mix source that offers `listen` (a relay of a mixer
 * on another node, say): what `AudioMixer.read` does for this node's mixer. Everyone
 * who does not speak reads one feed of the full mix (one listener of the source, one
 * page per flush for all); a reader whose listener turns out to speak (`speaking`, once
 * the source knows it) moves to a feed of the mix without them, keeping its stream.
 */
export class MixReads {
  /** The full mix's feeds, by flush interval. */
  private readonly full = new Map<number, MixFeed>();
  /** Each speaker's own mix's feeds, by speaker, then flush interval. */
  private readonly own = new Map<string, Map<number, MixFeed>>();
  /** Readers of a full feed by listener id: they move if that id speaks. */
  private readonly waiting = new Map<string, Map<FeedReader, number>>();
  private readonly speakers = new Set<string>();

  constructor(private readonly opts: MixReadsOptions) {}

  read(me: string | undefined, format: FeedFormat, sink: FeedSink, flushTicks: number): FeedReader {
    if (me !== undefined && this.speakers.has(me)) return this.feed(me, flushTicks).join(format, sink);
    const reader = this.feed(undefined, flushTicks).join(format, sink, (r) => {
      if (me === undefined) return;
      const readers = this.waiting.get(me);
      if (readers?.delete(r) && readers.size === 0) this.waiting.delete(me);
    });
    if (me !== undefined) {
      let readers = this.waiting.get(me);
      if (!readers) this.waiting.set(me, (readers = new Map<FeedReader, number>()));
      readers.set(reader, flushTicks);
    }
    return reader;
  }

  /**
   * `id` speaks into the mix: its readers (now and later) hear a mix without them. Cheap
   * when it has none: call it for every speaker the source sees.
   */
  speaking(id: string): void {
    this.speakers.add(id);
    const readers = this.waiting.get(id);
    if (!readers) return;
    this.waiting.delete(id);
    for (const [r, flushTicks] of readers) this.feed(id, flushTicks).adopt(r);
  }

  /** `id` no longer speaks: its new readers share the full mix again. */
  silent(id: string): void {
    this.speakers.delete(id);
  }

  /** Drops every reader and subscription. */
  close(): void {
    for (const feed of [...this.full.values()]) feed.close();
    for (const feeds of [...this.own.values()]) for (const feed of [...feeds.values()]) feed.close();
    this.waiting.clear();
  }

  private feed(speaker: string | undefined, flushTicks: number): MixFeed {
    let feeds = speaker === undefined ? this.full : this.own.get(speaker);
    if (!feeds) this.own.set(speaker!, (feeds = new Map<number, MixFeed>()));
    const found = feeds.get(flushTicks);
    if (found) return found;
    const home = feeds;
    const relay: MixListener & { feed?: MixFeed } = { onFrame: (f) => relay.feed?.onFrame(f) };
    const sub = this.opts.listen(relay, speaker);
    const feed = new MixFeed({
      preSkip: sub.preSkip,
      flushTicks,
      backlogPackets: this.opts.backlogPackets,
      backlog: sub.backlog(),
      ...(this.opts.counters ? { counters: this.opts.counters } : {}),
      ...(this.opts.onSinkError ? { onSinkError: this.opts.onSinkError } : {}),
      onEmpty: () => {
        sub.close();
        if (home.get(flushTicks) === feed) home.delete(flushTicks);
        if (speaker !== undefined && home.size === 0) this.own.delete(speaker);
      },
    });
    relay.feed = feed;
    home.set(flushTicks, feed);
    return feed;
  }
}
