import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ChorusError, type ErrorCode } from '../../src/core/errors.js';
import { chorusErrors, errorTable } from '../../src/api/error-table.js';
import {
  closeAnswerFor,
  fromFastifyError,
  surfaceErrorHandler,
  type SurfaceErrors,
} from '../../src/api/surface-error-handler.js';
import { beepErrors } from '../../src/api/beep/beep-errors.js';
import { blueSkyErrors } from '../../src/api/bluesky/bluesky-errors.js';
import { signalErrors } from '../../src/api/signal/signal-errors.js';
import { voipErrors } from '../../src/api/voip/voip-errors.js';
import { PortUnavailableError } from '../../src/ports/port-errors.js';

interface Line {
  level: number;
  msg: string;
  code?: string;
  reason?: string;
  err?: { message: string; stack?: string };
}

function capture(): { log: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as Line) });
  return { log, lines };
}

const CODES = Object.keys(errorTable) as ErrorCode[];

/** Every code with the HTTP status and close code each surface answers it with. */
const expected: Record<string, { errors: SurfaceErrors; http: Record<ErrorCode, number>; close: number[] }> =
  {
    chorus: {
      errors: chorusErrors,
      http: {
        invalid_argument: 400,
        invalid_sdp: 400,
        unauthenticated: 401,
        forbidden: 403,
        not_found: 404,
        conflict: 409,
        too_large: 413,
        timeout: 408,
        rate_limited: 429,
        capacity: 503,
        overloaded: 503,
        unavailable: 503,
        upstream_failed: 502,
        internal: 500,
      },
      close: CODES.map((c) => errorTable[c].wsClose),
    },
    voip: {
      errors: voipErrors,
      // gostream: failed authentication 403, limits 429 (docs/voip.md).
      http: {
        invalid_argument: 400,
        invalid_sdp: 400,
        unauthenticated: 403,
        forbidden: 403,
        not_found: 404,
        conflict: 409,
        too_large: 413,
        timeout: 408,
        rate_limited: 429,
        capacity: 429,
        overloaded: 503,
        unavailable: 503,
        upstream_failed: 503,
        internal: 500,
      },
      close: CODES.map(() => 1008),
    },
    beep: {
      errors: beepErrors,
      http: {
        invalid_argument: 400,
        invalid_sdp: 400,
        unauthenticated: 401,
        forbidden: 403,
        not_found: 404,
        conflict: 409,
        too_large: 413,
        timeout: 408,
        rate_limited: 429,
        capacity: 503,
        overloaded: 503,
        unavailable: 503,
        upstream_failed: 502,
        internal: 500,
      },
      close: CODES.map((c) => errorTable[c].wsClose),
    },
    bluesky: {
      errors: blueSkyErrors,
      http: {
        invalid_argument: 400,
        invalid_sdp: 400,
        unauthenticated: 401,
        forbidden: 403,
        not_found: 404,
        conflict: 409,
        too_large: 413,
        timeout: 408,
        rate_limited: 429,
        capacity: 503,
        overloaded: 503,
        unavailable: 503,
        upstream_failed: 502,
        internal: 500,
      },
      close: CODES.map((c) => errorTable[c].wsClose),
    },
    signal: {
      errors: signalErrors,
      // The original answers every unreadable body with one 400; Chorus adds the 413, and the
      // 503 while the cluster's store is out of reach.
      http: Object.fromEntries(
        CODES.map((c) => [
          c,
          c === 'too_large' ? 413 : c === 'internal' ? 500 : c === 'unavailable' ? 503 : 400,
        ]),
      ) as Record<ErrorCode, number>,
      close: CODES.map((c) => errorTable[c].wsClose),
    },
  };

describe('the error table', () => {
  it('gives every code a 4xx/5xx status and a close code a client can tell apart', () => {
    for (const code of CODES) {
      const { http, wsClose } = errorTable[code];
      expect(http, code).toBeGreaterThanOrEqual(400);
      expect(http, code).toBeLessThan(600);
      expect(wsClose === 1007 || wsClose === 1008 || wsClose >= 1009, code).toBe(true);
      expect([1000, 1001, 1005, 1006, 1015], code).not.toContain(wsClose);
    }
    expect(errorTable.internal).toEqual({ http: 500, wsClose: 1011 });
    expect(errorTable.overloaded).toEqual({ http: 503, wsClose: 1013 });
    expect(errorTable.invalid_sdp).toEqual({ http: 400, wsClose: 1007 });
  });

  for (const [surface, { errors, http, close }] of Object.entries(expected)) {
    it(`${surface}: maps each code to its status and close code`, () => {
      CODES.forEach((code, i) => {
        const err = new ChorusError(code, `the ${code} case`);
        const answer = code === 'internal' && !errors.internal ? errors.hidden : errors.http(err);
        expect(answer.status, `${surface} ${code}`).toBe(http[code]);
        expect(errors.close(err).code, `${surface} ${code}`).toBe(close[i]);
      });
      expect(errors.hidden.status).toBe(500);
      expect(errors.hiddenClose.code).toBe(1011);
    });
  }

  it('keeps the seeds’ bodies: plain text for VOIP and Beep, {"error"} for Blue Sky, INVALID for Signal', () => {
    const err = new ChorusError('not_found', 'call not found');
    expect(voipErrors.http(err)).toEqual({ status: 404, body: 'call not found\n', type: 'text/plain' });
    expect(beepErrors.http(new ChorusError('unauthenticated', 'invalid token'))).toEqual({
      status: 401,
      body: 'invalid token',
      type: 'text/plain',
    });
    expect(blueSkyErrors.http(err)).toEqual({ status: 404, body: { error: 'call not found' } });
    expect(signalErrors.http(err).body).toEqual({ status: 'INVALID', message: 'invalid body' });
    expect(chorusErrors.http(err).body).toEqual({ error: { code: 'not_found', message: 'call not found' } });
  });

  it('tells a busy client when to come back: Retry-After on 503', () => {
    const busy = new ChorusError('overloaded', 'peer limit reached', { retryAfterSeconds: 7 });
    expect(blueSkyErrors.http(busy).headers).toEqual({ 'retry-after': '7' });
    expect(beepErrors.http(busy).headers).toEqual({ 'retry-after': '7' });
    // Beep's clients retry any 503; the default wait when the error names none.
    expect(beepErrors.http(new ChorusError('unavailable', 'down')).headers).toEqual({ 'retry-after': '5' });
  });

  it('keeps the status Fastify chose for its own 4xx', () => {
    const fastify415 = Object.assign(new Error('Unsupported Media Type'), {
      statusCode: 415,
      code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    });
    const coded = fromFastifyError(fastify415)!;
    expect(coded.code).toBe('invalid_argument');
    expect(voipErrors.http(coded).status).toBe(415);
    expect(beepErrors.http(coded).status).toBe(415);
    expect(blueSkyErrors.http(coded).status).toBe(400);
    expect(fromFastifyError(Object.assign(new Error('late'), { statusCode: 408 }))!.code).toBe('timeout');
    expect(fromFastifyError(Object.assign(new Error('big'), { statusCode: 413 }))!.code).toBe('too_large');
    expect(fromFastifyError(Object.assign(new Error('boom'), { statusCode: 500 }))).toBeUndefined();
    expect(fromFastifyError(new Error('plain'))).toBeUndefined();
  });
});

describe('surfaceErrorHandler', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function serve(errors: SurfaceErrors) {
    const { log, lines } = capture();
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- types the app with Fastify's logger, as create-server does
    app = Fastify({ loggerInstance: log as FastifyBaseLogger, bodyLimit: 1024 });
    app.setErrorHandler(surfaceErrorHandler(errors));
    app.get('/coded/:code', async (request) => {
      const { code } = request.params as { code: ErrorCode };
      throw new ChorusError(code, `refused: ${'x'.repeat(1000)}`);
    });
    app.get('/port', async () => {
      throw new PortUnavailableError('store', "the cluster's NATS is not reachable; try again shortly");
    });
    app.get('/bug', async () => {
      throw new Error('a bug of the server: secret detail');
    });
    app.post('/body', async (request) => request.body);
    await app.ready();
    return lines;
  }

  it('answers a coded refusal in the surface’s form with one warn line, no stack, the text clipped', async () => {
    const lines = await serve(voipErrors);
    const res = await app!.inject({ method: 'GET', url: '/coded/conflict' });
    expect(res.statusCode).toBe(409);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toBe(`refused: ${'x'.repeat(1000)}\n`);
    const logged = lines.filter((l) => l.level >= 40);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 40, msg: 'voip: request refused', code: 'conflict' });
    expect(logged[0]!.err).toBeUndefined();
    expect(JSON.stringify(logged[0])).not.toMatch(/x{201}/);
  });

  it('hides a failure of the server’s own behind the surface’s 500 and logs it once at error with its stack', async () => {
    for (const [errors, status, body] of [
      [chorusErrors, 500, JSON.stringify({ error: { code: 'internal', message: 'internal server error' } })],
      [voipErrors, 500, 'internal error\n'],
      [beepErrors, 500, 'Error establishing WebRTC connection'],
      [blueSkyErrors, 500, JSON.stringify({ error: 'internal error' })],
      [signalErrors, 500, JSON.stringify({ status: 'INVALID', message: 'internal error' })],
    ] as const) {
      const lines = await serve(errors);
      const res = await app!.inject({ method: 'GET', url: '/bug' });
      expect(res.statusCode, errors.surface).toBe(status);
      expect(res.body, errors.surface).toBe(body);
      expect(res.body).not.toContain('secret');
      const errorLines = lines.filter((l) => l.level >= 50);
      expect(errorLines, errors.surface).toHaveLength(1);
      expect(errorLines[0]!.msg).toBe(`${errors.surface}: internal error`);
      expect(errorLines[0]!.err?.stack).toMatch(/a bug of the server/);
      expect(lines.filter((l) => l.level === 40)).toEqual([]);
      await app!.close();
      app = undefined;
    }
  });

  it('a coded internal error is hidden too, unless the surface’s seed shows its text (Blue Sky)', async () => {
    let lines = await serve(beepErrors);
    let res = await app!.inject({ method: 'GET', url: '/coded/internal' });
    expect(res.statusCode).toBe(500);
    expect(res.body).toBe('Error establishing WebRTC connection');
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);
    await app!.close();
    lines = await serve(blueSkyErrors);
    res = await app!.inject({ method: 'GET', url: '/coded/internal' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: `refused: ${'x'.repeat(1000)}` });
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);
  });

  it('answers a port outage (NATS out of reach) with 503, Retry-After and a clear body in every form', async () => {
    const text = "the cluster's NATS is not reachable; try again shortly";
    for (const [errors, body] of [
      [chorusErrors, JSON.stringify({ error: { code: 'unavailable', message: text } })],
      [voipErrors, `${text}\n`],
      [beepErrors, text],
      [blueSkyErrors, JSON.stringify({ error: text })],
      [signalErrors, JSON.stringify({ status: 'UNAVAILABLE', message: text })],
    ] as const) {
      const lines = await serve(errors);
      const res = await app!.inject({ method: 'GET', url: '/port' });
      expect(res.statusCode, errors.surface).toBe(503);
      expect(res.headers['retry-after'], errors.surface).toMatch(/^\d+$/);
      expect(res.body, errors.surface).toBe(body);
      // An outage is not a bug of the server: one warn line, no error line.
      expect(
        lines.filter((l) => l.level >= 50),
        errors.surface,
      ).toEqual([]);
      expect(
        lines.filter((l) => l.level === 40),
        errors.surface,
      ).toHaveLength(1);
      await app!.close();
      app = undefined;
    }
  });

  it('maps Fastify’s own 4xx: unreadable JSON, a body too large, an unsupported type', async () => {
    const lines = await serve(signalErrors);
    const bad = await app!.inject({
      method: 'POST',
      url: '/body',
      headers: { 'content-type': 'application/json' },
      payload: '{"username":',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ status: 'INVALID', message: 'invalid body' });
    const big = await app!.inject({
      method: 'POST',
      url: '/body',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ username: 'u'.repeat(2000) }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toEqual({ status: 'INVALID', message: 'body too large' });
    const odd = await app!.inject({
      method: 'POST',
      url: '/body',
      headers: { 'content-type': 'application/x-odd' },
      payload: 'x',
    });
    expect(odd.statusCode).toBe(400);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      'signal: invalid body',
      'signal: invalid body',
      'signal: invalid body',
    ]);
  });
});

describe('closeAnswerFor', () => {
  it('closes with the surface’s code for a refusal (warn) and its hidden close for a failure (error, once)', () => {
    const { log, lines } = capture();
    expect(closeAnswerFor(voipErrors, new ChorusError('conflict', 'user already connected'), log)).toEqual({
      code: 1008,
      reason: 'user already connected',
    });
    expect(closeAnswerFor(beepErrors, new ChorusError('invalid_sdp', 'y'.repeat(500)), log)).toEqual({
      code: 1007,
      reason: 'y'.repeat(120),
    });
    expect(closeAnswerFor(beepErrors, new ChorusError('overloaded', 'busy'), log).code).toBe(1013);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, 'voip: request refused'],
      [40, 'beep: offer refused'],
      [40, 'beep: request refused'],
    ]);
    expect(closeAnswerFor(beepErrors, new Error('native failure'), log)).toEqual({
      code: 1011,
      reason: 'Error establishing WebRTC connection',
    });
    const errorLines = lines.filter((l) => l.level >= 50);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]!.err?.stack).toMatch(/native failure/);
  });

  it('closes with "try again later" (1013) when the cluster is out of reach, logged as a refusal', () => {
    const { log, lines } = capture();
    const outage = new PortUnavailableError('bus', "the cluster's NATS is not reachable; try again shortly");
    expect(closeAnswerFor(chorusErrors, outage, log)).toEqual({ code: 1013, reason: outage.message });
    expect(lines.map((l) => [l.level, l.code])).toEqual([[40, 'unavailable']]);
  });
});
