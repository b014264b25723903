/**
 * `qmpx exec`: one monitor command, the way `virsh qemu-monitor-command`
 * runs it (docs/monitor-facts.md §5, spec/cli/fixtures/libvirt-9.0/virsh-qemu-monitor-command.txt),
 * against any monitor socket.
 *
 *   qmpx exec SOCKET [--hmp | --agent] [--pretty] [--return-value] [--timeout S] [--pass-fds N,M] CMD...
 *
 * The words become a command as lib/cli/command-line.ts describes (virsh's
 * wrapping plus qmp-shell's key=value) and go through the pass-through API,
 * which restores a caller's own id and adds none of its own. Output:
 *   - the reply compact (`{"return":{...}}`), or indented by two with
 *     --pretty, or only the `return` value with --return-value; one newline
 *     after it (virsh prints an extra blank line after compact output);
 *   - --hmp: the monitor's text with CRLF made LF.
 * Unlike virsh, which exits 0 whatever QEMU answers, a QMP error reply is
 * printed on stdout and exits 1, as does HMP text that reads as an error.
 * Connection problems print one line on stderr and exit 2 (lib/cli/common.ts).
 * --pass-fds sends the named open fds with the command, as virsh does
 * (README, "File descriptors").
 */
import { Command } from './commander.js';
import { hmpErrorText } from '../hmp/error-text.js';
import { monitorCommand } from '../passthrough/command.js';
import { MonitorCommandFlags } from '../passthrough/flags.js';
import { TimeoutError } from '../errors.js';
import { buildQmpCommand, CommandLineError, parsePassFds, passFdProblem } from './command-line.js';
import { parseTarget } from '../transport.js';
import { CliError, connectForCli, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, parseSeconds, runCli } from './common.js';
import { compactJson, memberText, prettyJson } from './json-text.js';
import { isNatsUrl } from '../nats/client-connection.js';
import { addNatsOptions, natsOptionsGiven, type NatsCliOptions } from './nats-options.js';

/** The options commander hands to the action. */
export interface ExecCliOptions extends NatsCliOptions {
  readOnly?: boolean;
  hmp?: boolean;
  agent?: boolean;
  pretty?: boolean;
  returnValue?: boolean;
  timeout?: number;
  validate?: boolean;
  passFds?: number[];
}

/** The `exec` subcommand, ready for `program.addCommand()`. */
export function execCommand(): Command {
  return addNatsOptions(new Command('exec'))
    .description('run one QMP (or HMP) command and print the reply, like virsh qemu-monitor-command')
    .argument('<socket>', 'the monitor: PATH, unix:PATH, tcp:HOST:PORT, or a VM of the fleet: nats://SERVER[:PORT]/[HOST/]VM')
    .argument('<cmd...>', 'the command: JSON, NAME, NAME JSON-ARGS, NAME key=value... (or an HMP line with --hmp)')
    .option('--hmp', 'the command is a human monitor (HMP) command line')
    .option('--agent', "SOCKET is a guest agent's (qemu-ga), which sends no greeting: the command is a guest-agent command")
    .option('--pretty', 'indent JSON output by two spaces')
    .option('--return-value', "print only the value of the reply's 'return' member")
    .option('--validate', "check the arguments against the QEMU's schema first; refused ones are not sent (exit 1)")
    .option('--timeout <seconds>', 'give up (exit 2) if connecting and the reply take longer; over NATS exit 3, outcome unknown (default 10)', parseSeconds)
    .option('--pass-fds <N,M>', 'send these open file descriptors with the command (getfd, add-fd), e.g. 3 after 3</tmp/disk.img', parsePassFds)
    .option('--read-only', "with a nats:// target: send on the VM's read-only subject (.ro.), where qmpx refuses what would change the VM")
    .addHelpText(
      'after',
      `
Exit status: 0 success; 1 QEMU answered with an error (printed on stdout) or the
command could not be built; 2 the monitor could not be reached or did not answer
(over NATS also: no serve answers for that VM, or NATS refused the subject);
3 (NATS only) no reply within --timeout: the outcome is unknown, QEMU may have run it.

Examples:
  qmpx exec /tmp/vm.qmp query-status
  qmpx exec /tmp/vm.qmp '{"execute":"query-status"}' --pretty
  qmpx exec /tmp/vm.qmp query-name --return-value
  qmpx exec /tmp/vm.qmp human-monitor-command command-line='info version'
  qmpx exec /tmp/vm.qmp qom-get '{"path":"/machine","property":"type"}'
  qmpx exec /tmp/vm.qmp --hmp info status
  qmpx exec /tmp/vm.qmp --pass-fds 3 add-fd fdset-id=1 3</tmp/disk.img
  qmpx exec nats://nats.example/host-a/web-1 query-status
  qmpx exec nats://nats.example/web-1 --read-only query-block`,
    )
    .action((socket: string, words: string[], options: ExecCliOptions, command: Command) => {
      if (options.hmp && options.agent) command.error('error: --hmp cannot be combined with --agent (the guest agent has no human monitor)');
      if (options.passFds && options.agent) command.error('error: --pass-fds cannot be combined with --agent (the guest agent takes no file descriptors)');
      if (options.hmp && (options.pretty || options.returnValue)) {
        command.error(`error: --hmp cannot be combined with ${options.pretty ? '--pretty' : '--return-value'} (HMP output is text)`);
      }
      if (options.readOnly && !isNatsUrl(socket)) command.error('error: --read-only needs a nats:// target (a read-only socket of qmpx serve is its own path)');
      const natsOnly = natsOptionsGiven(options);
      if (natsOnly.length > 0 && !isNatsUrl(socket)) command.error(`error: ${natsOnly[0]} needs a nats:// target`);
      if (options.agent && isNatsUrl(socket)) command.error('error: --agent cannot be used with a nats:// target');
      return runCli('exec', () => runExec(socket, words, options));
    });
}

async function runExec(socket: string, words: string[], options: ExecCliOptions): Promise<number> {
  let commandText: string;
  try {
    commandText = options.hmp ? words.join(' ') : buildQmpCommand(words);
  } catch (error) {
    if (error instanceof CommandLineError) throw new CliError(error.message, EXIT_FAILED);
    throw error;
  }
  const fds = options.passFds;
  if (isNatsUrl(socket)) {
    if (fds !== undefined) throw new CliError('--pass-fds needs a unix socket: file descriptors cannot travel over NATS', EXIT_FAILED);
    const { runNatsExec } = await import('./nats-exec.js');
    return runNatsExec(socket, commandText, options, (reply) => printReply(reply, options));
  }
  if (fds !== undefined) checkPassFds(socket, fds);
  const deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout * 1000;
  const monitor = await connectForCli(socket, deadline, options.agent ? { protocol: 'qga' } : fds !== undefined ? { fdPassing: true } : {});
  try {
    // The schema checks (and what they load) only when asked for.
    const problem = options.validate && !options.hmp ? await (await import('./schema.js')).argumentProblem(monitor, commandText) : undefined;
    if (problem !== undefined) throw new CliError(`refused by qmpx before sending, not by QEMU: ${problem}`, EXIT_FAILED);
    const flags = options.hmp ? MonitorCommandFlags.HMP : MonitorCommandFlags.NONE;
    const reply = await monitorCommand(monitor, commandText, flags, fds === undefined ? {} : { fds }).catch((error: unknown) => {
      // The library counts what was left of the deadline; the user gave --timeout.
      if (error instanceof TimeoutError) throw new CliError(`${socket}: no reply within --timeout ${options.timeout} s`, EXIT_UNREACHABLE, { cause: error });
      throw error;
    });
    if (options.hmp) {
      const text = reply.replaceAll('\r\n', '\n');
      process.stdout.write(text === '' || text.endsWith('\n') ? text : `${text}\n`);
      return hmpErrorText(text) === null ? EXIT_OK : EXIT_FAILED;
    }
    return printReply(reply, options);
  } finally {
    await monitor.close();
  }
}

/** Refuses (exit 1, nothing opened) --pass-fds that cannot be sent: not over a unix socket, or not open here (lib/cli/command-line.ts). */
function checkPassFds(socket: string, fds: readonly number[]): void {
  if (!('path' in parseTarget(socket))) throw new CliError(`--pass-fds: file descriptors travel only over a unix socket, not ${socket}`, EXIT_FAILED);
  for (const fd of fds) {
    const problem = passFdProblem(fd);
    if (problem !== undefined) {
      throw new CliError(`--pass-fds: file descriptor ${fd} ${problem}; open it in the shell that runs qmpx, e.g. ${fd}</path/to/file`, EXIT_FAILED);
    }
  }
}

/** Prints a QMP reply text in the requested shape; returns the exit code it implies. */
function printReply(reply: string, options: ExecCliOptions): number {
  const format = (text: string): string => (options.pretty ? prettyJson(text) : compactJson(text));
  const returned = memberText(reply, 'return');
  if (returned === undefined) {
    // An error reply is shown whole, whatever --return-value says: it is the evidence.
    process.stdout.write(`${format(reply)}\n`);
    return EXIT_FAILED;
  }
  process.stdout.write(`${format(options.returnValue ? returned : reply)}\n`);
  return EXIT_OK;
}
