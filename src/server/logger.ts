import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.js';

/** pino-pretty is a development dependency: a production install (`npm ci --omit=dev`) has none. */
function prettyInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * JSON lines on stdout; pretty when stdout is a terminal (or LOG_PRETTY=yes) and
 * pino-pretty is installed, else JSON with one warning saying why. Tests pass their own
 * logger instead.
 */
export function createLogger(config: Config['log']): Logger {
  const wanted = config.pretty === 'yes' || (config.pretty === 'auto' && process.stdout.isTTY === true);
  const pretty = wanted && prettyInstalled();
  const log = pino({
    level: config.level,
    base: { service: 'chorus' },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }
      : {}),
  });
  if (wanted && !pretty && config.pretty === 'yes') {
    log.warn('LOG_PRETTY: pino-pretty is not installed (a development dependency): logging JSON lines');
  }
  return log;
}
