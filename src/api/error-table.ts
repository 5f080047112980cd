import type { ErrorCode } from '../core/errors.js';
import type { SurfaceErrors } from './surface-error-handler.js';

/**
 * How each error code reads on the wire by default: Chorus's own routes use it as is,
 * and a surface whose seed answers differently overrides only what differs (in its one
 * `*-errors.ts` file).
 */
export const errorTable: Record<ErrorCode, { http: number; wsClose: number }> = {
  invalid_argument: { http: 400, wsClose: 1007 },
  invalid_sdp: { http: 400, wsClose: 1007 },
  unauthenticated: { http: 401, wsClose: 4000 },
  forbidden: { http: 403, wsClose: 4003 },
  not_found: { http: 404, wsClose: 4004 },
  conflict: { http: 409, wsClose: 4009 },
  too_large: { http: 413, wsClose: 1009 },
  timeout: { http: 408, wsClose: 1008 },
  rate_limited: { http: 429, wsClose: 1008 },
  capacity: { http: 503, wsClose: 1013 },
  overloaded: { http: 503, wsClose: 1013 },
  unavailable: { http: 503, wsClose: 1013 },
  upstream_failed: { http: 502, wsClose: 1014 },
  internal: { http: 500, wsClose: 1011 },
};

/** The JSON error body of Chorus's own routes (seed routes keep their documented bodies). */
export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Chorus's own wire form: `{"error": {"code", "message"}}` with the table's status. */
export const chorusErrors: SurfaceErrors = {
  surface: 'chorus',
  http: (err) => ({
    // Fastify's own 4xx keep the status it chose (415, 408, ...).
    status: err.details.httpStatus ?? errorTable[err.code].http,
    body: errorBody(err.code, err.message),
    ...(err.details.retryAfterSeconds === undefined
      ? {}
      : { headers: { 'retry-after': String(err.details.retryAfterSeconds) } }),
  }),
  hidden: { status: 500, body: errorBody('internal', 'internal server error') },
  close: (err) => ({ code: errorTable[err.code].wsClose, reason: err.message }),
  hiddenClose: { code: errorTable.internal.wsClose, reason: 'internal error' },
};
