import type { Logger } from 'pino';
import { TokenBucket } from './token-bucket.js';

/** Longest piece of client-supplied text copied into a log line. */
export const CLIENT_TEXT_MAX = 200;

/** Client text made safe for a log line: at most CLIENT_TEXT_MAX characters, marked when cut. */
export function clipClientText(text: string, max = CLIENT_TEXT_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

/**
 * Log lines caused by clients (protocol errors, refused connections): any client can
 * make them, so at most `perSecond` lines a second are written, server-wide (a token
 * bucket with a burst of one second's lines); the rest are counted, and the count rides
 * on the next line written (`suppressed`).
 */
export class ThrottledLog {
  private readonly lines: TokenBucket;
  private pending = 0;
  private total = 0;

  constructor(
    private readonly log: Logger,
    perSecond = 10,
    private readonly now: () => number = Date.now,
  ) {
    this.lines = new TokenBucket(perSecond, perSecond, now());
  }

  warn(fields: Record<string, unknown>, msg: string): void {
    this.write('warn', fields, msg);
  }

  debug(fields: Record<string, unknown>, msg: string): void {
    this.write('debug', fields, msg);
  }

  /** Lines dropped since start. */
  get suppressed(): number {
    return this.total;
  }

  private write(level: 'warn' | 'debug', fields: Record<string, unknown>, msg: string): void {
    if (!this.log.isLevelEnabled(level)) return;
    if (!this.lines.take(this.now())) {
      this.pending++;
      this.total++;
      return;
    }
    if (this.pending > 0) {
      this.log[level]({ ...fields, suppressed: this.pending }, msg);
      this.pending = 0;
    } else {
      this.log[level](fields, msg);
    }
  }
}
