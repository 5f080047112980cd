import type { Logger } from 'pino';

/** Longest piece of client-supplied text copied into a log line. */
export const CLIENT_TEXT_MAX = 200;

/** Client text made safe for a log line: at most CLIENT_TEXT_MAX characters, marked when cut. */
export function clipClientText(text: string, max = CLIENT_TEXT_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

/**
 * Log lines caused by clients (protocol errors, refused connections): any client can
 * make them, so at most `perSecond` lines a second are written, server-wide; the rest are
 * counted, and the count rides on the next line written (`suppressed`).
 */
export class ThrottledLog {
  private windowStart = -Infinity;
  private written = 0;
  private pending = 0;
  private total = 0;

  constructor(
    private readonly log: Logger,
    private readonly perSecond = 10,
    private readonly now: () => number = Date.now,
  ) {}

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
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      this.windowStart = t;
      this.written = 0;
    }
    if (this.written >= this.perSecond) {
      this.pending++;
      this.total++;
      return;
    }
    this.written++;
    if (this.pending > 0) {
      this.log[level]({ ...fields, suppressed: this.pending }, msg);
      this.pending = 0;
    } else {
      this.log[level](fields, msg);
    }
  }
}
