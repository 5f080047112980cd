import type { ErrorCode } from './protocol.js';

/** A refusal from the server (an `error` message) or a failure of the SDK itself. */
export class ChorusError extends Error {
  override readonly name = 'ChorusError';
  constructor(
    /** The server's error code, or `timeout` / `closed` / `failed` for the SDK's own. */
    readonly code: ErrorCode | 'timeout' | 'closed' | 'failed',
    message: string,
  ) {
    super(message);
  }
}
