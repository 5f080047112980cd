import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import { subjectToken, type Bus, type BusSubscription } from '../../ports/bus/bus.js';
import type { KvBucket, Store } from '../../ports/store/store.js';
import { busJson, readBusJson } from '../bus-json.js';
import { storeKey } from './store-key.js';

interface StoredEvent {
  /** 0: not numbered (a broadcast, or the store was unreachable): no `id:` line, no replay. */
  id: number;
  name: string;
  data: string;
  at: number;
}

/** One user's recent events in the store: the newest id, and those kept for replay. */
interface UserLog {
  last: number;
  events: StoredEvent[];
}

export interface EventHubOptions {
  bus: Bus;
  store: Store;
  /** Interval of each stream's `: keep-alive` comment. */
  keepAliveMs: number;
  /** The server's heartbeat wheel: keep-alives go out per stream, spread, not in one sweep. */
  heartbeats: HeartbeatScheduler;
  /** Recent events kept per user for `Last-Event-ID` replay. */
  replayEvents: number;
  replayMs: number;
  /** Bytes that may wait on one stream; past this it is closed (it will reconnect and resume). */
  maxQueuedBytes: number;
  log: Logger;
  /** For bad bus messages. */
  busLog: ThrottledLog;
}

const EVENTS = 'chorus.voip.events';
const BROADCAST = 'chorus.voip.broadcast';
const APPEND_ATTEMPTS = 8;

const eventName = z.string().regex(/^[A-Za-z0-9]{1,32}$/);
const eventData = z
  .string()
  .max(64 * 1024)
  .refine((d) => !/[\r\n]/.test(d));
const eventMessage = z.object({
  id: z.number().int().nonnegative(),
  name: eventName,
  data: eventData,
  at: z.number(),
});
/** Events of one name in one bus message (liveBatch); each item is about someone. */
const BATCH_ITEMS = 256;
const batchMessage = z.object({
  id: z.literal(0),
  name: eventName,
  at: z.number(),
  items: z
    .array(z.object({ about: z.string().max(256), data: eventData }))
    .min(1)
    .max(BATCH_ITEMS),
});
const userMessage = z.union([eventMessage, batchMessage]);

/** A stream of this node, with the newest event id written to it. */
interface LocalStream {
  res: ServerResponse;
  written: number;
  /** Live events that came while the log was being read; undefined once live. */
  held: StoredEvent[] | undefined;
}

/**
 * Server-Sent Events per user, across nodes: every open stream of a user (several tabs,
 * on any node) receives. Each event is first numbered in the user's log in the store
 * (a compare-and-set append, so ids increase per user cluster-wide, and start from the
 * clock so they keep increasing after the log is gone), then published on
 * `chorus.voip.events.<user>`, which each node holding a stream of that user subscribes
 * to. A stream reconnecting with `Last-Event-ID`, on whichever node, gets what it
 * missed from the log. A stream that stops reading is closed instead of stalling
 * everyone (the original's global unbuffered channel did).
 */
export class EventHub {
  private readonly streams = new Map<string, Set<LocalStream>>();
  private readonly subs = new Map<string, BusSubscription>();
  /** Per user, this node's sends in order (a send waits for the one before). */
  private readonly sending = new Map<string, Promise<void>>();
  private readonly logs: KvBucket<UserLog>;
  private readonly broadcastSub: BusSubscription;
  /** Bus messages liveBatch published (one per user per batch): /metrics. */
  liveMessages = 0;

  constructor(private readonly opts: EventHubOptions) {
    this.logs = opts.store.bucket<UserLog>('voip-events');
    this.broadcastSub = opts.bus.subscribe(BROADCAST, (msg) => {
      const e = readBusJson(eventMessage, msg.data, { surface: 'voip', subject: msg.subject }, opts.busLog);
      if (!e) return;
      for (const set of this.streams.values()) for (const s of set) this.deliver(s, e);
    });
  }

  /** Takes over `res` as an event stream; `first` is written before anything else. */
  open(user: string, res: ServerResponse, first: string, lastEventId: number | undefined): void {
    res.write(first);
    const openedAt = Date.now();
    const stream: LocalStream = { res, written: 0, held: [] };
    let set = this.streams.get(user);
    if (!set) {
      this.streams.set(user, (set = new Set()));
      this.subs.set(user, this.subscribeUser(user));
    }
    set.add(stream);
    const keepAlive = this.opts.heartbeats.watch(
      { beat: () => this.write(res, ': keep-alive\n\n'), expire: () => undefined },
      { beatMs: this.opts.keepAliveMs },
    );
    const drop = () => {
      keepAlive.stop();
      set.delete(stream);
      if (set.size === 0 && this.streams.get(user) === set) {
        this.streams.delete(user);
        this.subs.get(user)?.unsubscribe();
        this.subs.delete(user);
      }
    };
    res.once('close', drop);
    res.on('error', drop);
    void this.catchUp(user, stream, (e) =>
      lastEventId === undefined ? e.at > openedAt : e.id > lastEventId,
    );
  }

  /**
   * Numbers the event in `user`'s log and sends it to every stream of `user` on every
   * node. Returns at once; a user's events leave this node in the order sent.
   */
  send(user: string, name: string, data: string): void {
    const before = this.sending.get(user) ?? Promise.resolve();
    const next = before.then(() => this.sendNow(user, name, data));
    this.sending.set(user, next);
    void next.finally(() => {
      if (this.sending.get(user) === next) this.sending.delete(user);
    });
  }

  /**
   * To every open stream of each of `users`, on every node, not numbered (so not
   * replayed after Last-Event-ID): several events of one name in one bus message per
   * user (at most BATCH_ITEMS a message), each item about someone (`about`); a user is
   * not sent the items about themself. For notices of a room's state that go to every
   * member on each change (a member's mic or headset): numbering them costs a store
   * write per member per change, O(members²) while a room fills (the original sent them
   * to open streams only), and a burst of N changes costs one message per member, not N
   * (#17.3). The payloads are built once for all; published per user, in order.
   */
  liveBatch(users: Iterable<string>, name: string, items: readonly { about: string; data: string }[]): void {
    const at = Date.now();
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < items.length; i += BATCH_ITEMS)
      payloads.push(busJson({ id: 0, name, at, items: items.slice(i, i + BATCH_ITEMS) }));
    for (const user of users) {
      const subject = `${EVENTS}.${subjectToken(user)}`;
      for (const payload of payloads) this.opts.bus.publish(subject, payload);
      this.liveMessages += payloads.length;
    }
  }

  /** To every open stream on every node; not numbered, so not replayed. */
  broadcast(name: string, data: string): void {
    this.opts.bus.publish(BROADCAST, busJson({ id: 0, name, data, at: Date.now() }));
  }

  get streamCount(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.size;
    return n;
  }

  /**
   * Deletes the logs of users with no event in the replay window (and a minute more):
   * ids start from the clock, so a user's next log still numbers after the old one. An
   * event appended between the read and the delete loses its replay, not its delivery.
   */
  async sweep(): Promise<void> {
    const before = Date.now() - this.opts.replayMs - 60_000;
    let after: string | undefined;
    for (;;) {
      const keys = await this.logs.keysPage(after, 256);
      for (const k of keys) {
        const log = await this.logs.get(k);
        if (log && log.last < before) await this.logs.delete(k);
      }
      if (keys.length < 256) return;
      after = keys[keys.length - 1];
    }
  }

  /** Resolves once this node's pending sends have left (tests, shutdown). */
  async flushed(): Promise<void> {
    await Promise.all([...this.sending.values()]);
  }

  close(): void {
    this.broadcastSub.unsubscribe();
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
    for (const set of this.streams.values()) for (const s of set) s.res.end();
    this.streams.clear();
  }

  private subscribeUser(user: string): BusSubscription {
    return this.opts.bus.subscribe(`${EVENTS}.${subjectToken(user)}`, (msg) => {
      const m = readBusJson(
        userMessage,
        msg.data,
        { surface: 'voip', subject: msg.subject },
        this.opts.busLog,
      );
      if (!m) return;
      const streams = this.streams.get(user);
      if (!streams) return;
      if (!('items' in m)) {
        for (const s of streams) this.deliver(s, m);
        return;
      }
      const events: StoredEvent[] = [];
      for (const item of m.items)
        if (item.about !== user) events.push({ id: 0, name: m.name, data: item.data, at: m.at });
      if (events.length === 0) return;
      // One write per stream for the whole batch (unnumbered events: nothing to skip).
      const text = events.map(frame).join('');
      for (const s of streams) {
        if (s.held) s.held.push(...events);
        else this.write(s.res, text);
      }
    });
  }

  private async sendNow(user: string, name: string, data: string): Promise<void> {
    let event: StoredEvent = { id: 0, name, data, at: Date.now() };
    try {
      event = await this.append(user, name, data);
    } catch (err) {
      // Live delivery still works; only its replay is lost.
      this.opts.log.warn({ err, user, event: name }, 'voip: event not numbered (store), sent without id');
    }
    this.opts.bus.publish(`${EVENTS}.${subjectToken(user)}`, busJson(event));
  }

  private async append(user: string, name: string, data: string): Promise<StoredEvent> {
    const key = storeKey(user);
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const e = await this.logs.entry(key);
      const at = Date.now();
      const event: StoredEvent = { id: Math.max((e?.value.last ?? 0) + 1, at), name, data, at };
      const kept = this.opts.replayEvents > 0 ? this.recent(e?.value.events ?? [], at) : [];
      if (this.opts.replayEvents > 0) kept.push(event);
      const log: UserLog = { last: event.id, events: kept };
      if (e ? await this.logs.update(key, log, e.revision) : await this.logs.create(key, log)) return event;
    }
    throw new Error(`event log of ${user}: ${APPEND_ATTEMPTS} writers raced`);
  }

  /** The events still in the replay window, leaving room for one more. */
  private recent(events: StoredEvent[], now: number): StoredEvent[] {
    const cutoff = now - this.opts.replayMs;
    const kept = events.filter((e) => e.at >= cutoff);
    return kept.slice(Math.max(0, kept.length - this.opts.replayEvents + 1));
  }

  /**
   * Writes what the stream missed from the user's log, then the live events held
   * meanwhile: those after `Last-Event-ID`, or (none given) those sent since it opened
   * but before this node's subscription was in place. The log is read after subscribing,
   * through the same connection, so nothing falls between the two.
   */
  private async catchUp(
    user: string,
    stream: LocalStream,
    missed: (e: StoredEvent) => boolean,
  ): Promise<void> {
    try {
      const log = await this.logs.get(storeKey(user));
      const cutoff = Date.now() - this.opts.replayMs;
      for (const e of log?.events ?? []) if (missed(e) && e.at >= cutoff) this.write1(stream, e);
    } catch (err) {
      this.opts.log.warn({ err, user }, 'voip: replay not read (store), live events only');
    }
    const held = stream.held ?? [];
    stream.held = undefined;
    for (const e of held) this.deliver(stream, e);
  }

  private deliver(stream: LocalStream, e: StoredEvent): void {
    if (stream.held) stream.held.push(e);
    else this.write1(stream, e);
  }

  private write1(stream: LocalStream, e: StoredEvent): void {
    if (e.id !== 0) {
      if (e.id <= stream.written) return; // replayed already
      stream.written = e.id;
    }
    this.write(stream.res, frame(e));
  }

  private write(res: ServerResponse, text: string): void {
    if (res.destroyed || res.writableEnded) return;
    if (res.writableLength > this.opts.maxQueuedBytes) {
      this.opts.log.warn({ queued: res.writableLength }, 'voip: event stream not reading, closed');
      res.destroy();
      return;
    }
    res.write(text);
  }
}

function frame(e: StoredEvent): string {
  const id = e.id === 0 ? '' : `id: ${e.id}\n`;
  return `${id}event: ${e.name}\ndata: ${e.data}\n\n`;
}
