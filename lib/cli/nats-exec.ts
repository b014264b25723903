/**
 * `qmpx exec nats://SERVER[:PORT]/[HOST/]VM CMD...`: one command on a VM of
 * the fleet, through the `qmpx serve --nats` that serves it. The words, the
 * output and --hmp / --pretty / --return-value / --validate are those of
 * the socket form (lib/cli/exec.ts); the request goes on
 * `qmpx.<host>.<vm>.cmd.<command>`, or `.ro.` with --read-only.
 *
 * Exit status, beyond the socket form's 0, 1 and 2:
 *   2  also: no serve answers for that VM (nothing ran), or the NATS server
 *      refused to carry the request (permission violation; nothing ran)
 *   3  no reply within --timeout: the outcome is unknown, QEMU may have run it
 */
import { hmpErrorText } from '../hmp/error-text.js';
import { QmpxError } from '../errors.js';
import { monitorCommand } from '../passthrough/command.js';
import { MonitorCommandFlags } from '../passthrough/flags.js';
import type { Monitor } from '../contract.js';
import { connectNats } from '../nats/remote-monitor.js';
import { NoResponderError, OutcomeUnknownError, PermissionDeniedError } from '../nats/remote-errors.js';
import { CliError, cliLogger, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, oneLine } from './common.js';
import { natsCredentials, type NatsCliOptions } from './nats-options.js';
import { argumentProblem } from './schema.js';

/** The request may have run: no reply came in time. */
export const EXIT_OUTCOME_UNKNOWN = 3;

/** How long a request over NATS waits for its reply without --timeout. */
const DEFAULT_TIMEOUT_S = 10;

export interface NatsExecOptions extends NatsCliOptions {
  hmp?: boolean;
  readOnly?: boolean;
  timeout?: number;
  validate?: boolean;
}

/** Runs the command and prints the reply; returns the exit status. `printReply` is the socket form's. */
export async function runNatsExec(
  url: string,
  commandText: string,
  options: NatsExecOptions,
  printReply: (reply: string) => number,
): Promise<number> {
  const timeoutMs = (options.timeout ?? DEFAULT_TIMEOUT_S) * 1000;
  let monitor: Monitor;
  try {
    monitor = await connectNats(url, {
      ...natsCredentials(options),
      readOnly: options.readOnly === true,
      commandTimeoutMs: timeoutMs,
      connectTimeoutMs: timeoutMs,
      logger: cliLogger(),
      name: 'qmpx exec',
    });
  } catch (error) {
    throw new CliError(oneLine(error instanceof Error ? error.message : String(error)), EXIT_UNREACHABLE, { cause: error });
  }
  try {
    if (options.hmp) {
      const text = await monitor.hmp(commandText).catch(cliFailure);
      process.stdout.write(text === '' || text.endsWith('\n') ? text : `${text}\n`);
      return hmpErrorText(text) === null ? EXIT_OK : EXIT_FAILED;
    }
    const problem = options.validate ? await argumentProblem(monitor, commandText).catch(cliFailure) : undefined;
    if (problem !== undefined) throw new CliError(`refused by qmpx before sending, not by QEMU: ${problem}`, EXIT_FAILED);
    return printReply(await monitorCommand(monitor, commandText, MonitorCommandFlags.NONE).catch(cliFailure));
  } finally {
    await monitor.close();
  }
}

/** A request's failure as the CLI reports it; a QMP error reply is not one (it is printed). */
function cliFailure(error: unknown): never {
  if (error instanceof OutcomeUnknownError) throw new CliError(error.message, EXIT_OUTCOME_UNKNOWN, { cause: error });
  if (error instanceof NoResponderError || error instanceof PermissionDeniedError) throw new CliError(error.message, EXIT_UNREACHABLE, { cause: error });
  if (error instanceof QmpxError && error.code === 'QMP_ERROR') throw new CliError(error.message, EXIT_FAILED, { cause: error });
  throw error;
}
