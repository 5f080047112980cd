import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ChorusError, isChorusError } from '../core/errors.js';
import { clipClientText } from '../lib/throttled-log.js';
import { isPortUnavailable } from '../ports/port-errors.js';

/** One HTTP answer: a status, a body (JSON unless `type` says otherwise), headers. */
export interface HttpAnswer {
  status: number;
  body: unknown;
  type?: string;
  headers?: Record<string, string>;
}

/** How a socket is closed after its upgrade. */
export interface CloseAnswer {
  code: number;
  reason: string;
}

/**
 * A surface's wire form for errors, written once per surface (`<surface>-errors.ts`)
 * and used by its HTTP error handler and its WebSocket paths alike.
 */
export interface SurfaceErrors {
  /** Prefix of its log lines. */
  surface: string;
  /** A coded refusal (any code but `internal`) on the surface's HTTP routes. */
  http(err: ChorusError): HttpAnswer;
  /** The 500 for a failure of the server's own: says nothing about it. */
  hidden: HttpAnswer;
  /** Where a seed's body carries the failure's own text: a coded `internal` error. */
  internal?(err: ChorusError): HttpAnswer;
  /** A coded refusal after the upgrade. */
  close(err: ChorusError): CloseAnswer;
  /** The close for a failure of the server's own. */
  hiddenClose: CloseAnswer;
  /** The warn line's message for a refusal; `<surface>: request refused` otherwise. */
  refusalLine?(err: ChorusError): string;
}

/** The longest close reason a close frame can carry is 123 bytes; ours stay under. */
const CLOSE_REASON_MAX = 120;

/**
 * Fastify's own client errors (a body too large, unreadable JSON, an unsupported content
 * type, the request deadline's 408) as coded errors, keeping the status Fastify chose;
 * undefined for anything else.
 */
export function fromFastifyError(err: unknown): ChorusError | undefined {
  if (isChorusError(err)) return err;
  // The cluster's NATS out of reach (store or bus): 503 with Retry-After, never a hang or a 500.
  if (isPortUnavailable(err)) {
    return new ChorusError('unavailable', err.message, {
      retryAfterSeconds: err.retryAfterSeconds,
      port: err.port,
    });
  }
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  const code = status === 413 ? 'too_large' : status === 408 ? 'timeout' : 'invalid_argument';
  const { code: fastifyCode, message } = err as { code?: unknown; message?: unknown };
  return new ChorusError(code, typeof message === 'string' ? message : '', {
    httpStatus: status,
    ...(typeof fastifyCode === 'string' ? { fastifyCode } : {}),
  });
}

function refusalFields(err: ChorusError): Record<string, unknown> {
  const { fastifyCode } = err.details;
  return { code: err.code, reason: clipClientText(err.message), ...(fastifyCode ? { fastifyCode } : {}) };
}

/**
 * The Fastify error handler of a surface: a coded refusal (or Fastify's own 4xx) gets
 * the surface's answer and one `warn` line without a stack, the client's text clipped;
 * anything else is a failure of the server's own: one `error` line with the stack, and
 * the surface's hidden 500.
 */
export function surfaceErrorHandler(
  errors: SurfaceErrors,
): (err: unknown, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  return async (err, request, reply) => {
    const coded = fromFastifyError(err);
    if (coded && coded.code !== 'internal') {
      const answer = withPortRetryAfter(errors.http(coded), coded);
      request.log.warn(
        { ...refusalFields(coded), status: answer.status },
        errors.refusalLine?.(coded) ?? `${errors.surface}: request refused`,
      );
      return send(reply, answer);
    }
    request.log.error({ err }, `${errors.surface}: internal error`);
    return send(reply, coded && errors.internal ? errors.internal(coded) : errors.hidden);
  };
}

/**
 * How to close a socket after its upgrade because of `err`, logged as the HTTP handler
 * logs: a coded refusal at `warn`, anything else at `error` with its stack.
 */
export function closeAnswerFor(errors: SurfaceErrors, err: unknown, log: Logger): CloseAnswer {
  const coded = isPortUnavailable(err) ? fromFastifyError(err) : err;
  if (isChorusError(coded) && coded.code !== 'internal') {
    log.warn(refusalFields(coded), errors.refusalLine?.(coded) ?? `${errors.surface}: request refused`);
    const answer = errors.close(coded);
    return { code: answer.code, reason: answer.reason.slice(0, CLOSE_REASON_MAX) };
  }
  log.error({ err }, `${errors.surface}: internal error`);
  return errors.hiddenClose;
}

/**
 * A port outage's answer, and a draining node's (`unavailable`), says when to come back on
 * every surface, whatever its seed's form.
 */
function withPortRetryAfter(answer: HttpAnswer, err: ChorusError): HttpAnswer {
  const seconds = err.details.retryAfterSeconds;
  const always = err.details.port !== undefined || err.code === 'unavailable';
  if (!always || seconds === undefined || answer.headers?.['retry-after']) return answer;
  return { ...answer, headers: { ...answer.headers, 'retry-after': String(seconds) } };
}

function send(reply: FastifyReply, answer: HttpAnswer): FastifyReply {
  reply.code(answer.status);
  if (answer.type) reply.type(answer.type);
  if (answer.headers) reply.headers(answer.headers);
  return reply.send(answer.body);
}
