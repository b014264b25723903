/**
 * What every `qmpx` subcommand shares: exit codes, connecting with a clear
 * one-line failure, option value parsers, the CLI's logger.
 *
 * Exit codes:
 *   0  done
 *   1  the command failed: QEMU answered with an error, HMP printed error
 *      text, or the input could not be made into a command; also usage errors
 *   2  the monitor could not be reached or stopped answering: cannot connect,
 *      no greeting (another client holds it), connection lost, --timeout
 */
import { InvalidArgumentError } from './commander.js';
import { basename, extname } from 'node:path';
import { connect, parseTarget, type Monitor, type MonitorOptions } from '../index.js';
import { ConnectionClosedError, ProtocolError, QmpxError, TimeoutError } from '../errors.js';
import type { Logger, LogFn } from '../log.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_UNREACHABLE = 2;

/** An error the CLI reports as one stderr line and a given exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `message` on one line, for stderr. */
export function oneLine(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** True for errors that mean the monitor is unreachable or gone, not that a command failed. */
export function isConnectionProblem(error: unknown): boolean {
  return error instanceof ConnectionClosedError || error instanceof TimeoutError || error instanceof ProtocolError;
}

/**
 * Warnings from the library (protocol violations by the peer) as plain
 * `qmpx: warning: ...` lines on stderr; set QMPX_DEBUG=1 to see debug and
 * info messages with their fields. The pass-through taint notice is left
 * out: every command the CLI sends is a pass-through command, so it would
 * say nothing but appear on every run.
 */
export function cliLogger(): Logger {
  const debug = process.env.QMPX_DEBUG !== undefined && process.env.QMPX_DEBUG !== '' && process.env.QMPX_DEBUG !== '0';
  const line =
    (level: string, withFields: boolean): LogFn =>
    (fields, message) => {
      if (!debug && 'taint' in fields) return;
      const detail = withFields ? ` ${JSON.stringify(fields, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value))}` : '';
      process.stderr.write(`qmpx: ${level}: ${message}${detail}\n`);
    };
  const drop: LogFn = () => {};
  return {
    debug: debug ? line('debug', true) : drop,
    info: debug ? line('info', true) : drop,
    warn: line('warning', debug),
    error: line('error', debug),
    isLevelEnabled: (level) => debug || level === 'warn' || level === 'error',
  };
}

/**
 * Connects for a subcommand. `deadlineMs` (epoch ms), when given, bounds
 * connecting and every later command. Throws CliError(EXIT_UNREACHABLE) with
 * one line naming the socket on any failure.
 */
export async function connectForCli(target: string, deadlineMs?: number, options: MonitorOptions = {}): Promise<Monitor> {
  const remainingMs = deadlineMs === undefined ? undefined : Math.max(1, deadlineMs - Date.now());
  try {
    return await connect(target, {
      logger: cliLogger(),
      ...(remainingMs === undefined ? {} : { greetingTimeoutMs: remainingMs, commandTimeoutMs: remainingMs }),
      ...options,
    });
  } catch (error) {
    const message = error instanceof QmpxError ? error.message : String(error);
    throw new CliError(oneLine(message.includes(target) ? message : `${target}: ${message}`), EXIT_UNREACHABLE, { cause: error });
  }
}

/** A name for the monitor's VM when QEMU has none: the socket file's name, or HOST:PORT. */
export function socketName(target: string): string {
  const address = parseTarget(target);
  if ('path' in address) return basename(address.path, extname(address.path));
  if ('host' in address) return `${address.host}:${address.port}`;
  return 'socket';
}

/** Commander value parser for `--timeout S`: a positive number of seconds. */
export function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new InvalidArgumentError('expected a positive number of seconds');
  }
  return seconds;
}

/**
 * Runs a subcommand body, turning its outcome into process.exitCode.
 * CliError and anything else thrown print one `qmpx SUB: error: ...` line.
 * The process then ends on its own once output is flushed.
 */
export async function runCli(subcommand: string, body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (error) {
    const exitCode = error instanceof CliError ? error.exitCode : isConnectionProblem(error) ? EXIT_UNREACHABLE : EXIT_FAILED;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`qmpx ${subcommand}: error: ${oneLine(message)}\n`);
    process.exitCode = exitCode;
  }
}

/** commander argParser for a repeatable `--env NAME=VALUE`: collects them into one record. */
export function collectEnv(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const equals = value.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError(`expected NAME=VALUE, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
}

/**
 * Ends a watch (qmpx events, on a socket or over NATS) on SIGINT or SIGTERM
 * and, with `timeoutSeconds`, when that time has passed; what it sets up is
 * undone by the functions it adds to `cleanups`.
 */
export function endWatchOnSignalsOrTimeout(
  finish: (end: { kind: 'interrupted' } | { kind: 'timed-out' }) => void,
  timeoutSeconds: number | undefined,
  cleanups: Array<() => void>,
): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => finish({ kind: 'interrupted' });
    process.on(signal, onSignal);
    cleanups.push(() => process.off(signal, onSignal));
  }
  if (timeoutSeconds !== undefined) {
    const timer = setTimeout(() => finish({ kind: 'timed-out' }), timeoutSeconds * 1000);
    cleanups.push(() => clearTimeout(timer));
  }
}
