import { errors, type Msg, type Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { ThrottledLog } from '../../lib/throttled-log.js';
import type { NatsLink } from '../nats/nats-link.js';
import {
  BusTimeoutError,
  NoRespondersError,
  type Bus,
  type BusHandler,
  type BusMessage,
  type BusSubscription,
  busBytes,
} from './bus.js';

const NO_SUBSCRIPTION: BusSubscription = { unsubscribe: () => undefined };

/**
 * The bus on NATS core, over the process's one NatsLink. Subjects map one to one (the
 * port already follows NATS rules). Delivery is at most once, as NATS core's: `publish`
 * while the connection is down drops the message (counted, a throttled warning) instead
 * of buffering it for minutes or throwing into a caller's close path; `request` rejects at
 * once with PortUnavailableError. Subscriptions survive reconnects (the client renews
 * them). Every handler runs guarded: one that throws is logged, the process goes on.
 */
export class NatsBus implements Bus {
  /** Bus: every node on the same NATS. */
  readonly reachesOtherNodes = true;
  private readonly subs = new Set<Subscription>();
  private readonly warnings: ThrottledLog;
  private closed = false;
  /** Messages published while the connection was down (dropped). */
  dropped = 0;

  constructor(
    private readonly link: NatsLink,
    private readonly log: Logger,
  ) {
    this.warnings = new ThrottledLog(log, 1);
  }

  publish(subject: string, data?: Uint8Array | string): void {
    if (this.closed) return;
    if (!this.link.connected) {
      this.dropped++;
      this.warnings.warn({ subject, dropped: this.dropped }, 'bus: nats down, message dropped');
      return;
    }
    try {
      this.link.nc.publish(subject, busBytes(data));
    } catch (err) {
      // An invalid subject, or the connection closing under us: the caller's path goes on.
      this.dropped++;
      this.warnings.warn({ subject, reason: (err as Error).message }, 'bus: publish failed, message dropped');
    }
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    if (this.closed) return NO_SUBSCRIPTION;
    let sub: Subscription;
    try {
      // While disconnected the client keeps the subscription and renews it on reconnect.
      sub = this.link.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) {
            this.log.warn({ err, subject }, 'bus: subscription error');
            return;
          }
          this.deliver(handler, msg);
        },
      });
    } catch (err) {
      // The connection closed for good (shutting down) or an invalid subject: nothing to deliver.
      this.warnings.warn({ subject, reason: (err as Error).message }, 'bus: cannot subscribe');
      return NO_SUBSCRIPTION;
    }
    this.subs.add(sub);
    return {
      unsubscribe: () => {
        if (!this.subs.delete(sub)) return;
        try {
          sub.unsubscribe();
        } catch {
          // Already closed with the connection: nothing left to undo.
        }
      },
    };
  }

  request(
    subject: string,
    data: Uint8Array | string,
    opts: { timeoutMs?: number } = {},
  ): Promise<Uint8Array> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return this.link.guard('bus', `a request on ${subject}`, async () => {
      try {
        const answer = await this.link.nc.request(subject, busBytes(data), { timeout: timeoutMs });
        return answer.data;
      } catch (err) {
        if (err instanceof errors.RequestError && err.isNoResponders()) throw new NoRespondersError(subject);
        if (err instanceof errors.TimeoutError) throw new BusTimeoutError(subject, timeoutMs);
        throw err;
      }
    });
  }

  /** Ends this bus's subscriptions; the shared connection is the link's to close. */
  close(): Promise<void> {
    this.closed = true;
    for (const sub of this.subs) {
      try {
        sub.unsubscribe();
      } catch {
        // The connection may be closed already.
      }
    }
    this.subs.clear();
    return Promise.resolve();
  }

  private deliver(handler: BusHandler, msg: Msg): void {
    const reply = msg.reply;
    const out: BusMessage = reply
      ? {
          subject: msg.subject,
          data: msg.data,
          respond: (answer) => {
            if (!this.link.connected) return;
            try {
              this.link.nc.publish(reply, busBytes(answer));
            } catch (err) {
              this.warnings.warn(
                { subject: msg.subject, reason: (err as Error).message },
                'bus: reply failed',
              );
            }
          },
        }
      : { subject: msg.subject, data: msg.data };
    try {
      handler(out);
    } catch (err) {
      this.log.error({ err, subject: msg.subject }, 'bus handler threw');
    }
  }
}
