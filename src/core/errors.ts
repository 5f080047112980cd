/**
 * The one error type the engine raises (and surfaces raise for their own refusals). Its
 * `code` is stable and is what each surface maps to its own wire form (HTTP status and
 * body, WebSocket close code and reason) in one file; `api/error-table.ts` holds the
 * default mapping, Chorus's own.
 *
 * Codes fall in a few categories: the client's mistake (`invalid_argument`,
 * `invalid_sdp`, `too_large`), who is asking (`unauthenticated`, `forbidden`), the state
 * of things (`not_found`, `conflict`), limits (`rate_limited`, `capacity`, `overloaded`,
 * `timeout`), others failing (`unavailable`, `upstream_failed`), and the server's own
 * failure (`internal`), the only one logged at `error`.
 */
export type ErrorCode =
  | 'invalid_argument'
  /** A session description the validator or libdatachannel refused, or one with nothing usable. */
  | 'invalid_sdp'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  /** The client did not send its request in time. */
  | 'timeout'
  | 'rate_limited'
  /** A configured bound is reached (rooms, members). */
  | 'capacity'
  /** No new work now: a peer limit or a busy process. `details.retryAfterSeconds` says when. */
  | 'overloaded'
  /** A service Chorus relies on did not answer (down, slow). */
  | 'unavailable'
  /** A service Chorus relies on answered with a failure of its own. */
  | 'upstream_failed'
  | 'internal';

export interface ErrorDetails {
  /** Seconds a refused client should wait before trying again (`Retry-After`). */
  retryAfterSeconds?: number;
  /** Errors made from Fastify's own 4xx (bad JSON, too large, 408): the status it chose. */
  httpStatus?: number;
  [key: string]: unknown;
}

export class ChorusError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
    this.name = 'ChorusError';
  }
}

export function isChorusError(err: unknown): err is ChorusError {
  return err instanceof ChorusError;
}
