import type { ErrorCode } from '../core/errors.js';

/** How each engine error code reads on the wire: one table for every surface. */
export const errorTable: Record<ErrorCode, { http: number; wsClose: number }> = {
  invalid_argument: { http: 400, wsClose: 1007 },
  unauthenticated: { http: 401, wsClose: 4000 },
  forbidden: { http: 403, wsClose: 4003 },
  not_found: { http: 404, wsClose: 4004 },
  conflict: { http: 409, wsClose: 4009 },
  too_large: { http: 413, wsClose: 1009 },
  rate_limited: { http: 429, wsClose: 1008 },
  capacity: { http: 503, wsClose: 1013 },
  unavailable: { http: 503, wsClose: 1013 },
  internal: { http: 500, wsClose: 1011 },
};

/** The JSON error body of Chorus's own routes (seed routes keep their documented bodies). */
export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}
