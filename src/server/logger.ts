import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.js';

/**
 * JSON lines on stdout; pretty when stdout is a terminal (or LOG_PRETTY=yes). Tests pass
 * their own logger instead.
 */
export function createLogger(config: Config['log']): Logger {
  const pretty = config.pretty === 'yes' || (config.pretty === 'auto' && process.stdout.isTTY === true);
  return pino({
    level: config.level,
    base: { service: 'chorus' },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }
      : {}),
  });
}
