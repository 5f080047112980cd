import { errorTable } from '../error-table.js';
import type { SurfaceErrors } from '../surface-error-handler.js';

/** Seconds a Beep client told 503 waits before trying again, when the error says none. */
const RETRY_AFTER_SECONDS = 5;

/**
 * The Beep surface's errors (seed 003): plain text with the original's statuses, a 503
 * with `Retry-After`; after the upgrade, a close whose reason says what failed.
 */
export const beepErrors: SurfaceErrors = {
  surface: 'beep',
  http: (err) => {
    const status = err.details.httpStatus ?? errorTable[err.code].http;
    return {
      status,
      body: err.message,
      type: 'text/plain',
      ...(status === 503
        ? { headers: { 'retry-after': String(err.details.retryAfterSeconds ?? RETRY_AFTER_SECONDS) } }
        : {}),
    };
  },
  hidden: { status: 500, body: 'Error establishing WebRTC connection', type: 'text/plain' },
  // After the `/connect` upgrade: a bad offer 1007, a busy server 1013 (try again later).
  close: (err) => ({ code: errorTable[err.code].wsClose, reason: err.message }),
  hiddenClose: { code: errorTable.internal.wsClose, reason: 'Error establishing WebRTC connection' },
  refusalLine: (err) => (err.code === 'invalid_sdp' ? 'beep: offer refused' : 'beep: request refused'),
};
