import type { Logger } from 'pino';
import {
  BusTimeoutError,
  NoRespondersError,
  type Bus,
  type BusHandler,
  type BusMessage,
  type BusSubscription,
  busBytes,
} from './bus.js';

/**
 * A subscription, and its own handle: one object, no closure per subscription (Signal
 * holds one per connection: a named closure and its context cost about 300 bytes each
 * under esbuild's keepNames, heap snapshot, #17.1).
 */
class Sub implements BusSubscription {
  active = true;

  constructor(
    private readonly bus: LocalBus,
    readonly subject: string,
    readonly tokens: readonly string[] | null, // null: exact subject
    readonly handler: BusHandler,
  ) {}

  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.bus.remove(this);
  }
}

function matches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== '*' && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

/**
 * The in-process bus. Delivery is synchronous, in publish order, to a snapshot of the
 * subscribers; a throwing handler is logged and does not stop delivery to the others.
 */
export class LocalBus implements Bus {
  /** Bus: one process, no other node. */
  readonly reachesOtherNodes = false;
  private readonly exact = new Map<string, Sub[]>();
  private wildcards: Sub[] = [];
  private closed = false;

  constructor(private readonly log: Logger) {}

  publish(subject: string, data?: Uint8Array | string): void {
    this.dispatch(subject, busBytes(data), undefined);
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    const tokens = subject.split('.');
    const wild = tokens.includes('*') || tokens.includes('>');
    const sub = new Sub(this, subject, wild ? tokens : null, handler);
    if (wild) {
      this.wildcards = [...this.wildcards, sub];
    } else {
      this.exact.set(subject, [...(this.exact.get(subject) ?? []), sub]);
    }
    return sub;
  }

  /** @internal Sub.unsubscribe */
  remove(sub: Sub): void {
    if (sub.tokens) {
      this.wildcards = this.wildcards.filter((s) => s !== sub);
    } else {
      const rest = (this.exact.get(sub.subject) ?? []).filter((s) => s !== sub);
      if (rest.length === 0) this.exact.delete(sub.subject);
      else this.exact.set(sub.subject, rest);
    }
  }

  request(
    subject: string,
    data: Uint8Array | string,
    opts: { timeoutMs?: number } = {},
  ): Promise<Uint8Array> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise<Uint8Array>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const respond = (answer: Uint8Array | string): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        resolve(busBytes(answer));
      };
      const delivered = this.dispatch(subject, busBytes(data), respond);
      if (delivered === 0) {
        settled = true;
        reject(new NoRespondersError(subject));
      } else if (!settled) {
        timer = setTimeout(() => {
          if (settled) return;
          settled = true;
          reject(new BusTimeoutError(subject, timeoutMs));
        }, timeoutMs);
      }
    });
  }

  close(): Promise<void> {
    this.closed = true;
    this.exact.clear();
    this.wildcards = [];
    return Promise.resolve();
  }

  private dispatch(subject: string, data: Uint8Array, respond: BusMessage['respond']): number {
    if (this.closed) return 0;
    const msg: BusMessage = respond ? { subject, data, respond } : { subject, data };
    let count = 0;
    const exact = this.exact.get(subject);
    if (exact) for (const sub of exact) count += this.deliver(sub, msg);
    if (this.wildcards.length > 0) {
      const tokens = subject.split('.');
      for (const sub of this.wildcards) if (matches(sub.tokens!, tokens)) count += this.deliver(sub, msg);
    }
    return count;
  }

  private deliver(sub: Sub, msg: BusMessage): number {
    if (!sub.active) return 0;
    try {
      sub.handler(msg);
    } catch (err) {
      this.log.error({ err, subject: msg.subject }, 'bus handler threw');
    }
    return 1;
  }
}
