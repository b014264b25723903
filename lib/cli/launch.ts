/**
 * `qmpx launch`: start QEMU with a QMP socket and extra arguments exactly as
 * given, print where its monitors are and the exact argv, and stay in the
 * foreground until QEMU exits.
 *
 *   qmpx launch --qmp PATH [--hmp PATH] [--arg ARG]... [--env NAME=VALUE]...
 *               [--libvirt-xml FILE] [--qemu-binary BIN] [-- QEMU ARGS...]
 *
 * Extra arguments, in this order: the domain XML's qemu:arg values, the
 * --arg values, then everything after `--`. Each is one argv element, never
 * split or rewritten (lib/launch/qemu.ts). With none at all, the guest-less
 * QEMU of docs/monitor-facts.md §1 runs.
 *
 * QEMU never outlives launch: SIGINT, SIGTERM and SIGHUP are passed on and
 * waited for (a second one sends SIGKILL), and if launch itself dies the
 * kernel stops QEMU (launchQemu's parent-death guard). Exit status: QEMU's
 * exit code, or 128 + the signal number that ended it.
 */
import { Command } from './commander.js';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { LaunchError, launchQemu, type LaunchedQemu } from '../launch/qemu.js';
import { collectEnv, EXIT_FAILED, runCli } from './common.js';
import { LibvirtXmlError, readQemuCommandline } from './libvirt-xml.js';

/** The options commander hands to the action. */
export interface LaunchCliOptions {
  qmp: string;
  hmp?: string;
  arg?: string[];
  env?: Record<string, string>;
  libvirtXml?: string;
  qemuBinary?: string;
}

const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The `launch` subcommand, ready for `program.addCommand()`. */
export function launchCommand(): Command {
  return new Command('launch')
    .description('start QEMU with a QMP socket and extra arguments passed exactly as given, one argv element each')
    .usage('--qmp PATH [--hmp PATH] [--arg ARG]... [--env NAME=VALUE]... [--libvirt-xml FILE] [-- QEMU ARGS...]')
    .requiredOption('--qmp <path>', 'UNIX socket path where QEMU serves QMP')
    .option('--hmp <path>', 'UNIX socket path where QEMU serves the human monitor (HMP)')
    .option('--arg <arg>', 'one QEMU argv element, taken verbatim even when it starts with "-" (repeatable)', collectArg)
    .option('--env <name=value>', 'set a variable in QEMU\'s environment (repeatable)', collectEnv)
    .option('--libvirt-xml <file>', 'apply the <qemu:commandline> block (qemu:arg, qemu:env) of a libvirt domain XML')
    .option('--qemu-binary <path>', 'the QEMU binary (default qemu-system-x86_64)')
    .argument('[qemu-args...]', 'QEMU arguments after "--", each passed as one argv element')
    .addHelpText(
      'after',
      `
With no QEMU arguments at all, a guest-less QEMU runs:
  -machine none -nodefaults -display none -S
Otherwise qmpx adds only its monitor options; the rest is yours.

Examples:
  qmpx launch --qmp /tmp/vm.qmp
  qmpx launch --qmp /tmp/vm.qmp --hmp /tmp/vm.hmp -- -machine none -display none -S -name 'my vm'
  qmpx launch --qmp /tmp/vm.qmp --arg -machine --arg none --arg=-S --env TMPDIR=/var/tmp
  qmpx launch --qmp /tmp/vm.qmp --libvirt-xml domain.xml -- -machine none -display none`,
    )
    .action((qemuArgs: string[], options: LaunchCliOptions) => runCli('launch', () => runLaunch(qemuArgs, options)));
}

function collectArg(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

async function runLaunch(qemuArgs: string[], options: LaunchCliOptions): Promise<number> {
  let xml = { args: [] as string[], env: {} as Record<string, string> };
  if (options.libvirtXml !== undefined) {
    const text = await readFile(options.libvirtXml, 'utf8');
    try {
      xml = readQemuCommandline(text, options.libvirtXml);
    } catch (error) {
      if (error instanceof LibvirtXmlError) {
        process.stderr.write(`qmpx launch: error: ${error.message}\n`);
        return EXIT_FAILED;
      }
      throw error;
    }
  }
  const extraArgs = [...xml.args, ...(options.arg ?? []), ...qemuArgs];
  const env = { ...xml.env, ...options.env };

  // Signals that arrive while QEMU starts are held and applied once it runs.
  const received: NodeJS.Signals[] = [];
  let qemu: LaunchedQemu | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    received.push(signal);
    if (qemu) void qemu.stop(received.length > 1 ? 'SIGKILL' : signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onSignal);
  try {
    try {
      qemu = await launchQemu({
        qmpPath: options.qmp,
        hmpPath: options.hmp,
        extraArgs,
        env,
        binary: options.qemuBinary,
      });
    } catch (error) {
      if (!(error instanceof LaunchError)) throw error;
      process.stderr.write(`qmpx launch: error: ${error.message}\n`);
      return EXIT_FAILED;
    }
    process.stdout.write(describeLaunch(qemu, options, env));
    if (received.length > 0) void qemu.stop(received[0]);
    const { code, signal } = await qemu.exited;
    process.stderr.write(`qmpx launch: QEMU (pid ${qemu.pid}) exited ${signal === null ? `with code ${code}` : `on ${signal}`}\n`);
    return signal === null ? (code ?? EXIT_FAILED) : 128 + (constants.signals[signal] ?? 0);
  } finally {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, onSignal);
  }
}

/** The lines `launch` prints once QEMU serves: sockets, pid, environment additions, argv (shell-quoted). */
export function describeLaunch(qemu: Pick<LaunchedQemu, 'pid' | 'argv'>, options: Pick<LaunchCliOptions, 'qmp' | 'hmp'>, env: Record<string, string>): string {
  const lines = [`qmp: ${options.qmp}`];
  if (options.hmp !== undefined) lines.push(`hmp: ${options.hmp}`);
  lines.push(`pid: ${qemu.pid}`);
  for (const [name, value] of Object.entries(env)) lines.push(`env: ${shellQuote(`${name}=${value}`)}`);
  lines.push(`argv: ${qemu.argv.map(shellQuote).join(' ')}`);
  return lines.join('\n') + '\n';
}

/** `word` as a POSIX shell word that reads back as exactly `word`. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
