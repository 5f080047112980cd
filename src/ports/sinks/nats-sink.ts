import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { NatsLink } from '../nats/nats-link.js';
import type { MessageSink } from './message-sink.js';

/**
 * Publishes to NATS. Connects in the background and keeps reconnecting for as long as
 * the process runs (the original exited when NATS was down at start-up). While not
 * connected, messages are dropped and counted: they are live media, and replaying
 * minutes of stale audio after an outage would help nobody. Given the cluster's NatsLink
 * (when `NATS` names the cluster's own servers) it publishes on that one connection.
 */
export class NatsSink implements MessageSink {
  private nc: NatsConnection | undefined;
  private closed = false;
  connected = false;
  published = 0;
  dropped = 0;

  /** Set when the sink rides on the cluster's connection (same servers): not ours to close. */
  private readonly link: NatsLink | undefined;

  constructor(
    private readonly servers: string[],
    private readonly log: Logger,
    link?: NatsLink,
  ) {
    this.link = link;
    if (link) {
      this.nc = link.nc;
      this.connected = link.connected;
      link.events.on('down', () => (this.connected = false));
      link.events.on('up', () => (this.connected = !this.closed));
      return;
    }
    void this.run();
    // The first connection is retried silently by the client: say so once.
    const warn = setTimeout(() => {
      if (!this.connected && !this.closed) {
        this.log.warn({ servers: this.servers }, 'nats not reachable yet: bites are dropped until it is');
      }
    }, 5000);
    warn.unref();
  }

  /** While disconnected nothing reaches the client (which would buffer it): dropped. */
  publish(subject: string, data: Uint8Array): boolean {
    if (!this.connected || !this.nc) {
      this.dropped++;
      return false;
    }
    try {
      this.nc.publish(subject, data);
      this.published++;
      return true;
    } catch {
      this.dropped++;
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connected = false;
    if (!this.link) await this.nc?.drain().catch(() => undefined);
  }

  private async run(): Promise<void> {
    try {
      this.nc = await connect({
        servers: this.servers,
        name: 'chorus',
        waitOnFirstConnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
      });
    } catch (err) {
      if (!this.closed) this.log.error({ err }, 'nats: cannot connect');
      return;
    }
    if (this.closed) {
      await this.nc.close();
      return;
    }
    this.connected = true;
    this.log.info({ server: this.nc.getServer() }, 'nats connected');
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false;
        this.log.warn('nats disconnected: dropping bites until it is back');
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.log.info('nats reconnected');
      }
    }
    this.connected = false;
  }
}
