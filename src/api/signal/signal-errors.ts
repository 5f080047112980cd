import { errorTable } from '../error-table.js';
import type { SurfaceErrors } from '../surface-error-handler.js';
import { registerReply } from './signal-wire.js';

/**
 * The Signal surface's errors (seed 001): the original answers every body it cannot read
 * with one 400 `INVALID` reply; Chorus adds a 413 for a body over the limit. Refusals
 * with their own replies (TAKEN, RATE_LIMITED) and closes (signal-wire.ts's CloseCode)
 * are sent by the routes themselves.
 */
export const signalErrors: SurfaceErrors = {
  surface: 'signal',
  http: (err) =>
    err.code === 'too_large'
      ? { status: 413, body: registerReply('INVALID', 'body too large') }
      : err.code === 'unavailable' // the cluster's store or bus out of reach (Chorus)
        ? { status: 503, body: registerReply('UNAVAILABLE', err.message) }
        : { status: 400, body: registerReply('INVALID', 'invalid body') },
  hidden: { status: 500, body: registerReply('INVALID', 'internal error') },
  close: (err) => ({ code: errorTable[err.code].wsClose, reason: err.message }),
  hiddenClose: { code: errorTable.internal.wsClose, reason: 'internal error' },
  refusalLine: () => 'signal: invalid body',
};
