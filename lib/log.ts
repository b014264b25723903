/**
 * The logging seam. Its shape is pino's (`logger.warn(fields, message)`), so a
 * pino logger can be passed straight in; the library itself depends on no
 * logger. Callers format nothing unless the level is enabled: hot paths guard
 * debug output with `isLevelEnabled`, because formatting a message per wire
 * frame is what makes other clients slow (docs/monitor-facts.md §7).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFn = (fields: object, message: string) => void;

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  isLevelEnabled?(level: LogLevel): boolean;
}

const noop: LogFn = () => {};

function stderrLine(level: LogLevel): LogFn {
  return (fields, message) => {
    process.stderr.write(`qmpx ${level}: ${message} ${JSON.stringify(fields, bigintSafe)}\n`);
  };
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * Used when the caller passes no logger: problems a caller must know about
 * (protocol violations from the peer, dropped replies) reach stderr; routine
 * chatter is dropped.
 */
export const defaultLogger: Logger = {
  debug: noop,
  info: noop,
  warn: stderrLine('warn'),
  error: stderrLine('error'),
  isLevelEnabled: (level) => level === 'warn' || level === 'error',
};

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  isLevelEnabled: () => false,
};

export function isDebugEnabled(logger: Logger): boolean {
  return logger.isLevelEnabled?.('debug') ?? true;
}
