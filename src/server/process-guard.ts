import { Counter, type Registry } from 'prom-client';
import type { BaseLogger } from 'pino';
import { TokenBucket } from '../lib/token-bucket.js';

export interface ProcessGuardOptions {
  log: Pick<BaseLogger, 'error' | 'fatal'>;
  registry: Registry;
  /**
   * Called once, on the first uncaught exception: drain as on SIGTERM (not ready, close
   * sockets with 1001, bounded by the shutdown grace) and exit with code 1.
   */
  drainAndExit: (reason: string) => void;
}

/** Longest message kept in a log line: it may carry client text. */
const MAX_MESSAGE = 200;
/** Stack frames kept: enough to find the code, never a dump of minified source. */
const MAX_FRAMES = 12;
const MAX_FRAME = 300;
/** Unhandled rejections logged a minute (a burst of as many); beyond that they are only counted. */
const REJECTION_LOGS_PER_MINUTE = 10;

type Kind = 'exception' | 'rejection';

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);

/** What a log line says about an error: type, short message, a few stack frames. */
export function describeError(value: unknown): { type: string; message: string; stack?: string } {
  if (!(value instanceof Error)) {
    let text: string;
    try {
      text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
    } catch {
      text = String(value);
    }
    return { type: typeof value, message: clip(text, MAX_MESSAGE) };
  }
  const message = clip(value.message.split('\n')[0] ?? '', MAX_MESSAGE);
  const frames = (value.stack ?? '')
    .split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .slice(0, MAX_FRAMES)
    .map((line) => clip(line.trim(), MAX_FRAME));
  return { type: value.name, message, ...(frames.length > 0 ? { stack: frames.join('\n') } : {}) };
}

/**
 * What an error nobody caught does to the process, decided once:
 *
 * - An unhandled promise rejection is one failed operation whose promise nobody awaited;
 *   the rest of the process is intact. It is logged (error, one line, at most
 *   REJECTION_LOGS_PER_MINUTE a minute), counted, and the server keeps serving.
 * - An uncaught exception unwound a stack part-way through some state change: the process
 *   is in an unknown state. It is logged (fatal) and counted, then the server drains as on
 *   SIGTERM (`/readyz` 503 at once, sockets closed with 1001, bounded by the shutdown
 *   grace) and exits 1, so that a supervisor restarts it. Later exceptions while it
 *   drains are logged and counted only.
 *
 * Both are counted in `chorus_uncaught_errors_total{kind}`. Returns a function that
 * removes the handlers (for tests that install it in-process).
 */
export function installProcessGuard({ log, registry, drainAndExit }: ProcessGuardOptions): () => void {
  const counter = new Counter({
    name: 'chorus_uncaught_errors_total',
    help: 'Errors nobody caught: kind="rejection" (logged, process keeps serving) or kind="exception" (logged, then drain and exit 1).',
    labelNames: ['kind'],
    registers: [registry],
  });
  for (const kind of ['exception', 'rejection'] satisfies Kind[]) counter.inc({ kind }, 0);

  let draining = false;
  const rejectionLines = TokenBucket.everyMs(60_000 / REJECTION_LOGS_PER_MINUTE, REJECTION_LOGS_PER_MINUTE);
  let suppressed = 0;

  const onRejection = (reason: unknown): void => {
    try {
      counter.inc({ kind: 'rejection' });
      if (!rejectionLines.take()) {
        suppressed++;
        return;
      }
      log.error(
        { kind: 'rejection', error: describeError(reason), ...(suppressed > 0 ? { suppressed } : {}) },
        'unhandled promise rejection; still serving',
      );
      suppressed = 0;
    } catch {
      // Logging itself failed: nothing more can be said, and a rejection is not fatal.
    }
  };

  const onException = (err: unknown, origin: string): void => {
    try {
      counter.inc({ kind: 'exception' });
      log.fatal(
        { kind: 'exception', origin, error: describeError(err), draining },
        draining ? 'uncaught exception while draining' : 'uncaught exception; draining and exiting 1',
      );
    } catch {
      process.stderr.write(`chorus: uncaught exception: ${describeError(err).message}\n`);
    }
    if (draining) return;
    draining = true;
    try {
      drainAndExit('uncaughtException');
    } catch {
      process.exit(1);
    }
  };

  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    registry.removeSingleMetric('chorus_uncaught_errors_total');
  };
}
