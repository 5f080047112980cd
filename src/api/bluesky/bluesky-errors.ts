import { errorTable } from '../error-table.js';
import type { SurfaceErrors } from '../surface-error-handler.js';

/**
 * The Blue Sky surface's errors (seed 004): `{"error": "..."}` with Chorus's statuses
 * (docs/bluesky.md), `Retry-After` when the error says when to come back.
 */
export const blueSkyErrors: SurfaceErrors = {
  surface: 'bluesky',
  http: (err) => ({
    // An unsupported content type is a malformed body like any other: 400.
    status: err.details.httpStatus === 415 ? 400 : (err.details.httpStatus ?? errorTable[err.code].http),
    body: { error: err.message },
    ...(err.details.retryAfterSeconds === undefined
      ? {}
      : { headers: { 'retry-after': String(err.details.retryAfterSeconds) } }),
  }),
  hidden: { status: 500, body: { error: 'internal error' } },
  // A negotiation that failed inside libdatachannel: a 500 that says so (docs/bluesky.md).
  internal: (err) => ({ status: 500, body: { error: err.message } }),
  // The surface has no WebSockets; the table's codes, should it get one.
  close: (err) => ({ code: errorTable[err.code].wsClose, reason: err.message }),
  hiddenClose: { code: errorTable.internal.wsClose, reason: 'internal error' },
  refusalLine: (err) => (err.code === 'invalid_sdp' ? 'bluesky: offer refused' : 'bluesky: request refused'),
};
