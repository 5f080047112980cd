import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { MessageSink } from './message-sink.js';

/**
 * Publishes to NATS. Connects in the background and keeps reconnecting for as long as
 * the process runs (the original exited when NATS was down at start-up). While not
 * connected, messages are dropped and counted: they are live media, and replaying
 * minutes of stale audio after an outage would help nobody.
 */
export class NatsSink implements MessageSink {
  private nc: NatsConnection | undefined;
  private closed = false;
  connected = false;
  published = 0;
  dropped = 0;

  constructor(
    private readonly servers: string[],
    private readonly log: Logger,
  ) {
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
    await this.nc?.drain().catch(() => undefined);
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
