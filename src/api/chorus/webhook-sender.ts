import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { SignJWT } from 'jose';
import { gaugeAtScrape } from '../../lib/scrape-metrics.js';

/** One webhook event as its receivers get it (docs/native-api.md, "Webhooks"). */
export interface WebhookEvent {
  event:
    | 'room_started'
    | 'room_finished'
    | 'participant_joined'
    | 'participant_left'
    | 'track_published'
    | 'track_unpublished';
  room: { name: string };
  participant?: { identity: string };
  track?: { id: string; kind: string; source: string };
}

export interface WebhookOptions {
  urls: readonly string[];
  /** The API key pair that signs each delivery. */
  signer: { key: string; secret: string };
  /** Who sent it (the node's id), in every body. */
  node: string;
  registry: Registry;
  log: Logger;
  /** Events waiting per URL past which the oldest are dropped (a receiver down for long). */
  maxQueue?: number;
  /** Attempts of one event before it is given up. */
  maxAttempts?: number;
  /** First retry delay; doubled each time up to `maxDelayMs`. */
  firstDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
}

type Result = 'delivered' | 'retried' | 'failed' | 'dropped';

/** One receiver: its events in order, one POST in flight, the head retried with backoff. */
interface Receiver {
  url: string;
  queue: { body: string; attempts: number }[];
  busy: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Sends webhook events to each configured URL, signed, in order, retried with exponential
 * backoff. Queues are bounded (the oldest event goes when one is full) and everything is
 * asynchronous: sending never waits on a receiver, so media and the event loop never do.
 *
 * Signature: `Authorization: Bearer <JWT>`, an HS256 token of the API key (`kid`, `iss`)
 * whose `sha256` claim is the base64 SHA-256 of the exact body; receivers verify it with
 * the API secret, then compare the hash.
 */
export class WebhookSender {
  private readonly receivers: Receiver[];
  private readonly deliveries: Counter<'result'>;
  private readonly secret: Uint8Array;
  private closed = false;
  private readonly inFlight = new Set<AbortController>();
  private readonly maxQueue: number;
  private readonly maxAttempts: number;
  private readonly firstDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: WebhookOptions) {
    this.receivers = opts.urls.map((url) => ({ url, queue: [], busy: false, timer: undefined }));
    this.secret = new TextEncoder().encode(opts.signer.secret);
    this.maxQueue = opts.maxQueue ?? 1000;
    this.maxAttempts = opts.maxAttempts ?? 10;
    this.firstDelayMs = opts.firstDelayMs ?? 500;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.deliveries = new Counter({
      name: 'chorus_webhook_deliveries_total',
      help: 'Webhook POSTs by result: delivered (2xx), retried (a failure retried later), failed (given up after the last attempt), dropped (queue full)',
      labelNames: ['result'],
      registers: [opts.registry],
    });
    for (const r of ['delivered', 'retried', 'failed', 'dropped'] as const)
      this.deliveries.inc({ result: r }, 0);
    gaugeAtScrape(
      opts.registry,
      'chorus_webhook_queue',
      'Webhook events waiting to be delivered (all URLs)',
      () => this.receivers.reduce((n, r) => n + r.queue.length, 0),
    );
  }

  /** Queues `event` for every URL; returns at once. */
  send(event: WebhookEvent): void {
    if (this.closed || this.receivers.length === 0) return;
    const body = JSON.stringify({
      id: randomUUID(),
      createdAt: Math.floor(Date.now() / 1000),
      node: this.opts.node,
      ...event,
    });
    for (const r of this.receivers) {
      if (r.queue.length >= this.maxQueue) {
        r.queue.shift();
        this.count('dropped');
      }
      r.queue.push({ body, attempts: 0 });
      if (!r.busy && !r.timer) this.deliverNext(r);
    }
  }

  close(): void {
    this.closed = true;
    for (const r of this.receivers) {
      clearTimeout(r.timer);
      r.queue.length = 0;
    }
    for (const c of this.inFlight) c.abort();
  }

  private count(result: Result): void {
    this.deliveries.inc({ result });
  }

  private deliverNext(r: Receiver): void {
    const head = r.queue[0];
    if (this.closed || !head) return;
    r.busy = true;
    this.post(r.url, head.body).then(
      (ok) => this.settled(r, ok),
      (err: unknown) => {
        this.opts.log.error({ err, url: r.url }, 'chorus: webhook delivery threw');
        this.settled(r, false);
      },
    );
  }

  private settled(r: Receiver, ok: boolean): void {
    r.busy = false;
    if (this.closed) return;
    const head = r.queue[0];
    if (!head) return;
    if (ok) {
      r.queue.shift();
      this.count('delivered');
      this.deliverNext(r);
      return;
    }
    head.attempts++;
    if (head.attempts >= this.maxAttempts) {
      r.queue.shift();
      this.count('failed');
      this.opts.log.warn({ url: r.url, attempts: head.attempts }, 'chorus: webhook given up');
      this.deliverNext(r);
      return;
    }
    this.count('retried');
    const delay = Math.min(this.maxDelayMs, this.firstDelayMs * 2 ** (head.attempts - 1));
    r.timer = setTimeout(() => {
      r.timer = undefined;
      this.deliverNext(r);
    }, delay);
    r.timer.unref();
  }

  /** True for a 2xx answer; false for anything else (another status, no answer, timeout). */
  private async post(url: string, body: string): Promise<boolean> {
    const sha256 = createHash('sha256').update(body).digest('base64');
    const token = await new SignJWT({ sha256 })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: this.opts.signer.key })
      .setIssuer(this.opts.signer.key)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(this.secret);
    const abort = new AbortController();
    this.inFlight.add(abort);
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/webhook+json', authorization: `Bearer ${token}` },
        body,
        signal: abort.signal,
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(abort);
    }
  }
}
