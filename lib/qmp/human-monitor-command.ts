/**
 * A human-monitor line run through QMP's `human-monitor-command`, answered
 * with the same text a raw HMP socket gives (lib/hmp/output.ts).
 */
import type { ExecuteOptions, HmpOptions } from '../contract.js';
import { HmpError, UnsupportedError } from '../errors.js';
import { hmpErrorText } from '../hmp/error-text.js';
import { normaliseHmpOutput } from '../hmp/output.js';
import { requestedFds } from '../session/fd-rules.js';

/** How the line is sent: the QMP client's execute(). */
export type Execute = <T>(command: string, args: object, opts: ExecuteOptions) => Promise<T>;

/**
 * Runs `commandLine` and resolves with its output (CRLF → LF). Rejects with
 * UnsupportedError when fds are given, HmpError when `throwOnError` is set
 * and the output is the monitor's error text, or as execute() does.
 */
export async function runHumanMonitorCommand(execute: Execute, commandLine: string, opts: HmpOptions): Promise<string> {
  if (requestedFds(opts.fds) !== undefined) {
    // QEMU runs the line on a monitor of its own, without the fds, and keeps them for the next getfd or add-fd.
    throw new UnsupportedError(
      `${commandLine}: file descriptors cannot go through human-monitor-command; use execute('getfd', { fdname }, { fds }) or a human-monitor socket`,
    );
  }
  const output = normaliseHmpOutput(await execute<string>('human-monitor-command', { 'command-line': commandLine }, opts));
  if (opts.throwOnError && hmpErrorText(output) !== null) throw new HmpError(commandLine, output);
  return output;
}
