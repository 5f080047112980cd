import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';

interface StoredEvent {
  id: number;
  name: string;
  data: string;
  at: number;
}

export interface EventHubOptions {
  /** Interval of each stream's `: keep-alive` comment (and of pruning old events). */
  keepAliveMs: number;
  /** The server's heartbeat wheel: keep-alives go out per stream, spread, not in one sweep. */
  heartbeats: HeartbeatScheduler;
  /** Recent events kept per user for `Last-Event-ID` replay. */
  replayEvents: number;
  replayMs: number;
  /** Bytes that may wait on one stream; past this it is closed (it will reconnect and resume). */
  maxQueuedBytes: number;
  log: Logger;
}

/**
 * Server-Sent Events per user: every open stream of a user (several tabs) receives;
 * events carry ids and the recent ones are kept (also while the user is offline, for a
 * while) so a stream reconnecting with `Last-Event-ID` gets what it missed. A stream
 * that stops reading is closed instead of stalling everyone (the original's global
 * unbuffered channel did).
 */
export class EventHub {
  private readonly streams = new Map<string, Set<ServerResponse>>();
  private readonly recent = new Map<string, StoredEvent[]>();
  private nextId = 1;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: EventHubOptions) {
    this.timer = setInterval(() => this.prune(), opts.keepAliveMs);
    this.timer.unref();
  }

  /** Takes over `res` as an event stream; `first` is written before anything else. */
  open(user: string, res: ServerResponse, first: string, lastEventId: number | undefined): void {
    res.write(first);
    if (lastEventId !== undefined) {
      const cutoff = Date.now() - this.opts.replayMs;
      for (const e of this.recent.get(user) ?? []) {
        if (e.id > lastEventId && e.at >= cutoff) res.write(frame(e));
      }
    }
    let set = this.streams.get(user);
    if (!set) this.streams.set(user, (set = new Set()));
    set.add(res);
    const keepAlive = this.opts.heartbeats.watch(
      { beat: () => this.write(res, ': keep-alive\n\n'), expire: () => undefined },
      { beatMs: this.opts.keepAliveMs },
    );
    const drop = () => {
      keepAlive.stop();
      set.delete(res);
      if (set.size === 0 && this.streams.get(user) === set) this.streams.delete(user);
    };
    res.once('close', drop);
    res.on('error', drop);
  }

  /** Whether `user` has a stream open. */
  online(user: string): boolean {
    return (this.streams.get(user)?.size ?? 0) > 0;
  }

  send(user: string, name: string, data: string): void {
    const event: StoredEvent = { id: this.nextId++, name, data, at: Date.now() };
    if (this.opts.replayEvents > 0) {
      let list = this.recent.get(user);
      if (!list) this.recent.set(user, (list = []));
      list.push(event);
      while (list.length > this.opts.replayEvents || list[0]!.at < event.at - this.opts.replayMs)
        list.shift();
    }
    const set = this.streams.get(user);
    if (!set) return;
    const text = frame(event);
    for (const res of set) this.write(res, text);
  }

  broadcast(name: string, data: string): void {
    for (const user of this.streams.keys()) this.send(user, name, data);
  }

  get streamCount(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.size;
    return n;
  }

  close(): void {
    clearInterval(this.timer);
    for (const set of this.streams.values()) for (const res of set) res.end();
    this.streams.clear();
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

  /** Forgets events past the replay window (also those of users who never came back). */
  private prune(): void {
    const now = Date.now();
    for (const [user, list] of this.recent) {
      while (list.length > 0 && list[0]!.at < now - this.opts.replayMs) list.shift();
      if (list.length === 0) this.recent.delete(user);
    }
  }
}

function frame(e: StoredEvent): string {
  return `id: ${e.id}\nevent: ${e.name}\ndata: ${e.data}\n\n`;
}
