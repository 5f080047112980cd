import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { errors } from '@nats-io/nats-core';

function isConnectionError(err: unknown): boolean {
  return (
    err instanceof errors.TimeoutError ||
    err instanceof errors.ClosedConnectionError ||
    err instanceof errors.ConnectionError ||
    err instanceof errors.DrainingConnectionError ||
    err instanceof errors.RequestError
  );
}

/**
 * Whether a NATS client error means "the cluster is out of reach now" (connection closed
 * or down, no answer in time, JetStream not answering while it recovers) rather than a
 * refusal of this particular operation. Those become PortUnavailableError.
 */
export function isUnreachable(err: unknown): boolean {
  // JetStream's "not enabled" is a RequestError (no responders) wrapped as its cause.
  if (isConnectionError(err) || isConnectionError((err as { cause?: unknown } | null)?.cause)) return true;
  // 503: "JetStream system temporarily unavailable", e.g. while a restarted server recovers.
  return err instanceof JetStreamApiError && err.status === 503;
}

/** One line of a NATS error for a log line or a refusal's text. */
export function natsReason(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

/** Whether a KV create or update lost its race: the key was written since (or exists). */
export function isWrongRevision(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
