/**
 * The one error type the engine raises. Its `code` is stable and is what surfaces map to
 * their own wire format (HTTP status, WebSocket close code, the seed's body).
 */
export type ErrorCode =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'capacity'
  | 'unavailable'
  | 'internal';

export class ChorusError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ChorusError';
  }
}

export function isChorusError(err: unknown): err is ChorusError {
  return err instanceof ChorusError;
}
