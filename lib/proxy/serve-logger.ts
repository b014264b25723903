/**
 * serve's logger: pino, on stderr, one line per record. JSON lines for
 * journald and log shippers; on a terminal, pino-pretty's readable lines
 * (time, level name, message, fields). `auto` picks by whether stderr is a
 * terminal. pino-pretty is loaded only when used.
 */
import { pino, type Logger as PinoLogger } from 'pino';
import type { ServeLogLevel } from './config.js';

export type LogFormat = 'pretty' | 'json';
export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;

/** The format `auto` stands for here: pretty when stderr is a terminal. */
export function resolveLogFormat(format: LogFormat | 'auto' | undefined, stderrIsTerminal = process.stderr.isTTY === true): LogFormat {
  if (format === 'pretty' || format === 'json') return format;
  return stderrIsTerminal ? 'pretty' : 'json';
}

export async function createServeLogger(level: ServeLogLevel, format: LogFormat): Promise<PinoLogger> {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'json') return pino(options, pino.destination({ dest: 2, sync: true }));
  const { default: pretty } = await import('pino-pretty');
  // Synchronous, as the JSON destination is: the last lines before an exit are not lost.
  const stream = pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  return pino(options, stream);
}
