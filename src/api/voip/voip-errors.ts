import type { ErrorCode } from '../../core/errors.js';
import { errorTable } from '../error-table.js';
import type { SurfaceErrors } from '../surface-error-handler.js';

/**
 * Statuses where gostream's answers differ from Chorus's table: a failed authentication
 * is a 403 (as the original), and a full room or too many rooms a 429 (docs/voip.md).
 */
const STATUS: Partial<Record<ErrorCode, number>> = {
  unauthenticated: 403,
  capacity: 429,
  upstream_failed: 503,
};

/**
 * The VOIP surface's errors (seed 000): the original's plain-text bodies, one line each;
 * after a WebSocket upgrade, a 1008 close with the same text.
 */
export const voipErrors: SurfaceErrors = {
  surface: 'voip',
  http: (err) => ({
    status: err.details.httpStatus ?? STATUS[err.code] ?? errorTable[err.code].http,
    body: `${err.message}\n`,
    type: 'text/plain',
  }),
  hidden: { status: 500, body: 'internal error\n', type: 'text/plain' },
  close: (err) => ({ code: 1008, reason: err.message }),
  hiddenClose: { code: 1011, reason: 'internal error' },
};
