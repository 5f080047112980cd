import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { TypedEmitter } from '../../lib/typed-emitter.js';
import { PortStartError, PortUnavailableError } from '../port-errors.js';
import { isUnreachable, natsReason } from './nats-errors.js';

export interface NatsLinkOptions {
  /** `cluster.natsUrl`: one or more servers. */
  servers: readonly string[];
  nodeId: string;
  /** How long start-up waits for the first connection (`CLUSTER_CONNECT_TIMEOUT_SECONDS`). */
  connectTimeoutMs: number;
  log: Logger;
}

export interface NatsLinkEvents extends Record<string, unknown> {
  /** Connected again after a loss; the server's address. */
  up: string;
  /** The connection was lost; the client reconnects by itself. */
  down: string;
}

/** Seconds between attempts while start-up waits for the first connection. */
const FIRST_CONNECT_RETRY_MS = 250;

/**
 * The process's one NATS connection, shared by the bus, the store, the membership port
 * and (when it goes to the same servers) the bites sink. Opened once at start-up (which
 * waits for it, bounded, and checks that JetStream is on), then the client reconnects
 * forever on its own. `connected` follows the client's status so the ports can refuse at
 * once, with PortUnavailableError, while it is down.
 */
export class NatsLink {
  readonly events: TypedEmitter<NatsLinkEvents>;
  private up = true;
  private closed = false;
  private currentServer: string;
  /** Operations in flight that must end now if the connection drops. */
  private readonly onDown = new Set<() => void>();

  private constructor(
    readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {
    this.events = new TypedEmitter<NatsLinkEvents>(log);
    this.currentServer = nc.getServer();
    void this.followStatus();
  }

  /**
   * Connects (retrying until `connectTimeoutMs`) and checks JetStream; a failure is a
   * PortStartError saying which servers were tried and what to do.
   */
  static async open(opts: NatsLinkOptions): Promise<NatsLink> {
    const servers = [...opts.servers];
    const deadline = Date.now() + opts.connectTimeoutMs;
    let nc: NatsConnection | undefined;
    let lastError: unknown;
    while (!nc) {
      try {
        nc = await connect({
          servers,
          name: `chorus ${opts.nodeId}`,
          timeout: Math.max(500, Math.min(5000, deadline - Date.now())),
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          // A dead peer (no RST, e.g. a partition) is noticed after about 10 s.
          pingInterval: 5000,
          maxPingOut: 2,
          // The client captures a stack trace per request for async errors: measured as
          // about a third of a cross-node Signal hop's client CPU. Our errors carry the subject.
          noAsyncTraces: true,
        });
      } catch (err) {
        lastError = err;
        if (Date.now() + FIRST_CONNECT_RETRY_MS >= deadline) {
          throw new PortStartError(
            `cannot connect to NATS at ${servers.join(',')} within ${Math.round(opts.connectTimeoutMs / 1000)} s ` +
              `(${natsReason(lastError)}); start nats-server with -js there, or unset CLUSTER_NATS_URL to run one node`,
            { cause: lastError },
          );
        }
        await new Promise((r) => setTimeout(r, FIRST_CONNECT_RETRY_MS));
      }
    }
    await checkJetStream(nc, deadline);
    const link = new NatsLink(nc, opts.log);
    opts.log.info({ server: link.server, nodeId: opts.nodeId }, 'nats connected');
    return link;
  }

  /** Whether the connection is up now. */
  get connected(): boolean {
    return this.up && !this.closed;
  }

  /** The server connected to (or last connected to). */
  get server(): string {
    return this.currentServer;
  }

  /**
   * Runs `op` only while connected, and ends it at once (rejecting with
   * PortUnavailableError) if the connection drops or it outlasts `timeoutMs`; the
   * client's own errors that mean "out of reach" become PortUnavailableError too.
   */
  guard<T>(port: 'bus' | 'store', what: string, op: () => Promise<T>, timeoutMs?: number): Promise<T> {
    if (!this.connected) {
      return Promise.reject(
        new PortUnavailableError(
          port,
          `the cluster's NATS (${this.currentServer}) is not reachable; try again shortly`,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        if (timer) clearTimeout(timer);
        this.onDown.delete(lost);
        return true;
      };
      const lost = (): void => {
        if (finish())
          reject(new PortUnavailableError(port, `lost the cluster's NATS during ${what}; try again shortly`));
      };
      this.onDown.add(lost);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          if (finish())
            reject(
              new PortUnavailableError(
                port,
                `the cluster's NATS did not answer ${what} within ${timeoutMs} ms`,
              ),
            );
        }, timeoutMs);
      }
      op().then(
        (value) => {
          if (finish()) resolve(value);
        },
        (err: unknown) => {
          if (!finish()) return;
          reject(
            isUnreachable(err)
              ? new PortUnavailableError(
                  port,
                  `the cluster's NATS did not answer ${what}: ${natsReason(err)}`,
                  {
                    cause: err,
                  },
                )
              : (err as Error), // the operation's own refusal, passed on as it is
          );
        },
      );
    });
  }

  /** Drains the connection (after the ports using it are closed). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.endInFlight();
    await this.nc.drain().catch(() => this.nc.close());
  }

  private endInFlight(): void {
    for (const fn of [...this.onDown]) fn();
  }

  private async followStatus(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect') {
          if (!this.up) continue;
          this.up = false;
          this.log.warn(
            { server: s.server },
            'nats disconnected: cluster operations answer 503 until it is back',
          );
          this.endInFlight();
          this.events.emit('down', s.server);
        } else if (s.type === 'reconnect') {
          this.up = true;
          this.currentServer = s.server;
          this.log.info({ server: s.server }, 'nats reconnected');
          this.events.emit('up', s.server);
        }
      }
    } catch (err) {
      this.log.error({ err }, 'nats status stream failed');
    }
    // The iterator ends when the connection is closed for good.
    this.up = false;
    this.endInFlight();
  }
}

/** JetStream must be on: the store and membership live there. */
async function checkJetStream(nc: NatsConnection, deadline: number): Promise<void> {
  const server = nc.getServer();
  const refuse = (why: string, cause?: unknown): Promise<never> =>
    nc.close().then(() => {
      throw new PortStartError(
        `JetStream is not enabled on the NATS server at ${server} (${why}); start nats-server with -js (--jetstream), or unset CLUSTER_NATS_URL to run one node`,
        { cause },
      );
    });
  if (nc.info?.jetstream === false || nc.info?.jetstream === undefined) return refuse('its INFO says so');
  try {
    const jsm = await jetstreamManager(nc, { timeout: Math.max(1000, deadline - Date.now()) });
    await jsm.getAccountInfo();
  } catch (err) {
    if (isUnreachable(err)) return refuse(natsReason(err), err);
    throw new PortStartError(`JetStream at ${server} refused this account: ${natsReason(err)}`, {
      cause: err,
    });
  }
}
