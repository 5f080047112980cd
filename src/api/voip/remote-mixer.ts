import type { MixFrame, MixListener, MixSubscription } from '../../media/audio/audio-mixer.js';
import { createOpusDecoder, type AudioDecoder } from '../../media/audio/audio-codec.js';
import { FRAME_SAMPLES, frameBytes } from '../../media/audio/pcm-frame.js';
import type { PcmInput } from '../../media/audio/pcm-input.js';
import type { Tickable } from '../../media/audio/mix-clock.js';
import { MixFeed, type FeedFormat, type FeedReader, type FeedSink } from '../../media/audio/mix-feed.js';
import type { BusMessage, BusSubscription } from '../../ports/bus/bus.js';
import type { MixPort } from './media-group.js';
import { emptyMixBundle, readMixBundle } from './mix-bundle.js';
import type { RelayContext } from './relay-context.js';
import type { MixSubjects } from './relay-wire.js';

/**
 * One relayed mix on this node: the current tick's packet, decoded at most once a tick
 * and only when a listener reads PCM (WAV listeners); Ogg and WebSocket listeners take
 * the packet as it came.
 */
class RelayedMix implements MixFrame {
  private packet = new Uint8Array(0);
  private decoded = false;
  private decoder: AudioDecoder | undefined;
  private readonly frame = new Int16Array(FRAME_SAMPLES);
  private readonly bytes = frameBytes(this.frame);
  readonly backlog: Uint8Array[] = [];

  constructor(private readonly backlogPackets: number) {}

  /** A new tick's packet (copied: the bundle's bytes are the bus's; kept for the backlog). */
  set(packet: Uint8Array): void {
    this.packet = new Uint8Array(packet);
    this.decoded = false;
    if (this.backlogPackets > 0) {
      this.backlog.push(this.packet);
      if (this.backlog.length > this.backlogPackets) this.backlog.shift();
    }
  }

  get pcm(): Buffer {
    if (!this.decoded) {
      this.decoded = true;
      this.decoder ??= createOpusDecoder();
      const samples = this.decoder.decode(this.packet);
      const n = Math.min(samples.length, FRAME_SAMPLES);
      this.frame.set(samples.subarray(0, n));
      this.frame.fill(0, n);
    }
    return this.bytes;
  }

  opus(): Uint8Array {
    return this.packet;
  }
}

/**
 * The mixer of a call or room another node runs, as this node's media routes see it
 * (the `MixPort` of a RemoteGroup). Uploads are paced by the relay clock to the owner,
 * one 20 ms frame a message. Listeners here share what the owner sends once a tick for
 * this whole node: one bus message, whatever their number; each hears the member's own
 * mix when the bundle has one (they are speaking), the full mix otherwise.
 *
 * Streams (`read`) share MixFeeds as on the owner: one per mix and flush period, so the
 * full mix's Ogg page or WAV chunk is built once per flush for all its listeners here. A
 * reader on the full mix moves to its member's own feed the first time a bundle carries
 * their own mix (they started speaking, through any node), keeping its numbering.
 */
export class RemoteMixer implements MixPort {
  private readonly uplinks = new Map<string, Tickable & { input: PcmInput }>();
  private readonly listeners = new Map<MixListener, string | undefined>();
  private readonly full: RelayedMix;
  private readonly own = new Map<string, RelayedMix>();
  private readonly bundle = emptyMixBundle();
  private sub: BusSubscription | undefined;
  /** Streams' feeds by flush period: the full mix's, and each member's own once they spoke. */
  private readonly fullFeeds = new Map<number, MixFeed>();
  private readonly ownFeeds = new Map<string, Map<number, MixFeed>>();
  /** Readers on the full mix's feeds, by member, who move once that member speaks. */
  private readonly waiting = new Map<string, Map<FeedReader, number>>();
  /** Bundles so far: the phase of feeds made later, so that all flush on the same ticks. */
  private ticks = 0;

  constructor(
    private readonly subjects: MixSubjects,
    private readonly ctx: RelayContext,
  ) {
    this.full = new RelayedMix(ctx.backlogPackets);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  addInput(id: string, input: PcmInput): void {
    const subject = this.subjects.up(id);
    const { bus, stats } = this.ctx;
    const uplink = {
      input,
      tick: () => {
        // A new frame each time: the NATS client keeps a reference to what it
        // publishes until it flushes, after several ticks when the clock catches up.
        const frame = new Int16Array(FRAME_SAMPLES);
        if (!input.readFrame(frame)) return;
        bus.publish(subject, frameBytes(frame));
        stats.framesSent++;
      },
    };
    this.removeInput(id);
    this.uplinks.set(id, uplink);
    this.ctx.clock.add(uplink);
  }

  removeInput(id: string): void {
    const uplink = this.uplinks.get(id);
    if (!uplink) return;
    this.uplinks.delete(id);
    this.ctx.clock.remove(uplink);
    uplink.input.close();
  }

  read(me: string | undefined, format: FeedFormat, sink: FeedSink, flushTicks: number): FeedReader {
    const own = me === undefined ? undefined : this.ownFeeds.get(me);
    const onClose = (r: FeedReader) => {
      const set = me === undefined ? undefined : this.waiting.get(me);
      if (set?.delete(r) && set.size === 0) this.waiting.delete(me!);
    };
    const reader = this.feed(own ?? this.fullFeeds, flushTicks, own ? me : undefined).join(
      format,
      sink,
      onClose,
    );
    if (!own && me !== undefined) {
      let set = this.waiting.get(me);
      if (!set) this.waiting.set(me, (set = new Map<FeedReader, number>()));
      set.set(reader, flushTicks);
    }
    this.follow();
    return reader;
  }

  listen(listener: MixListener, speakerId?: string): MixSubscription {
    this.listeners.set(listener, speakerId);
    this.follow();
    return {
      preSkip: this.ctx.preSkip,
      backlog: () => this.full.backlog.slice(),
      close: () => {
        if (!this.listeners.delete(listener)) return;
        if (speakerId !== undefined && ![...this.listeners.values()].includes(speakerId))
          this.own.delete(speakerId);
        this.unfollowIfIdle();
      },
    };
  }

  /** Receives this mixer's bundles while anyone here listens. */
  private follow(): void {
    this.sub ??= this.ctx.bus.subscribe(this.subjects.mix, (m) => this.onBundle(m));
  }

  private unfollowIfIdle(): void {
    if (this.listeners.size > 0 || this.fullFeeds.size > 0 || this.ownFeeds.size > 0) return;
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  /** The feed of `feeds` (one mix's) for a flush period, made if new. */
  private feed(feeds: Map<number, MixFeed>, flushTicks: number, member: string | undefined): MixFeed {
    let feed = feeds.get(flushTicks);
    if (feed) return feed;
    const made = new MixFeed({
      preSkip: this.ctx.preSkip,
      flushTicks,
      backlogPackets: member === undefined ? this.ctx.backlogPackets : 0,
      backlog: this.full.backlog,
      phase: this.ticks,
      counters: this.ctx.feedCounters,
      onSinkError: (err) => this.ctx.log.warn({ err }, 'voip relay: listener failed; removed'),
      onEmpty: () => {
        if (feeds.get(flushTicks) !== made) return;
        feeds.delete(flushTicks);
        if (member !== undefined && feeds.size === 0 && this.ownFeeds.get(member) === feeds) {
          this.ownFeeds.delete(member);
          if (![...this.listeners.values()].includes(member)) this.own.delete(member);
        }
        this.unfollowIfIdle();
      },
    });
    feed = made;
    feeds.set(flushTicks, feed);
    return feed;
  }

  close(): void {
    for (const id of [...this.uplinks.keys()]) this.removeInput(id);
    for (const feeds of [this.fullFeeds, ...this.ownFeeds.values()])
      for (const feed of [...feeds.values()]) feed.close();
    this.waiting.clear();
    this.listeners.clear();
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  /** `member` spoke: their readers on the full mix move to their own mix's feeds. */
  private moveToOwn(member: string): void {
    const waiting = this.waiting.get(member);
    if (!waiting) return;
    this.waiting.delete(member);
    let feeds = this.ownFeeds.get(member);
    if (!feeds) this.ownFeeds.set(member, (feeds = new Map<number, MixFeed>()));
    for (const [reader, flushTicks] of waiting) this.feed(feeds, flushTicks, member).adopt(reader);
  }

  private give(feed: MixFeed, frame: MixFrame): void {
    try {
      feed.onFrame(frame);
    } catch (err) {
      this.ctx.log.warn({ err }, 'voip relay: feed failed; closed');
      feed.close();
    }
  }

  private onBundle(msg: BusMessage): void {
    const b = this.bundle;
    if (!readMixBundle(msg.data, b)) {
      this.ctx.stats.dropped++;
      this.ctx.busLog.warn(
        { subject: msg.subject, bytes: msg.data.byteLength },
        'voip relay: malformed mix bundle dropped',
      );
      return;
    }
    this.ctx.stats.bundlesReceived++;
    this.ctx.stats.mixesReceived += 1 + b.own.size;
    this.full.set(b.full);
    this.ticks++;
    for (const [member, packet] of b.own) {
      let mix = this.own.get(member);
      if (!mix) {
        // Only members listening here: a bundle names anyone speaking anywhere.
        const waiting = this.waiting.get(member);
        if (!waiting && ![...this.listeners.values()].includes(member)) continue;
        mix = new RelayedMix(0);
        this.own.set(member, mix);
      }
      mix.set(packet);
      this.moveToOwn(member);
    }
    for (const feed of this.fullFeeds.values()) this.give(feed, this.full);
    for (const [member, feeds] of this.ownFeeds) {
      const frame = (b.own.has(member) && this.own.get(member)) || this.full;
      for (const feed of feeds.values()) this.give(feed, frame);
    }
    for (const [listener, member] of this.listeners) {
      const frame = (member !== undefined && b.own.has(member) && this.own.get(member)) || this.full;
      try {
        listener.onFrame(frame);
      } catch (err) {
        this.listeners.delete(listener);
        this.ctx.log.warn({ err }, 'voip relay: listener failed; removed');
      }
    }
  }
}
