/**
 * A port cannot do its work now because what it runs on (the cluster's NATS) is out of
 * reach: the connection is down, or the server did not answer in time. Store and bus
 * operations reject with it at once rather than waiting for the client's own timeouts,
 * and the surfaces answer 503 with `Retry-After` (`api/surface-error-handler.ts`).
 * A plain error, as the bus's own: `ports/` sits below `core/` and its `ChorusError`.
 */
export class PortUnavailableError extends Error {
  /** Seconds a refused client should wait: about one reconnect attempt and JetStream's recovery. */
  readonly retryAfterSeconds = 2;

  constructor(
    readonly port: 'bus' | 'store',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PortUnavailableError';
  }
}

export function isPortUnavailable(err: unknown): err is PortUnavailableError {
  return err instanceof PortUnavailableError;
}

/**
 * A port could not be opened at start-up (NATS not reachable, JetStream off); the message
 * is one line that says what was tried and what to do. `server/` turns it into a
 * StartupError (exit 2).
 */
export class PortStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PortStartError';
  }
}
