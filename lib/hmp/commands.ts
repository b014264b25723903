/**
 * QMP commands that a human monitor can answer, and how: the HMP line that
 * does the same thing, and a parser that turns its text back into the value
 * QMP returns on the same QEMU (same members, same member order, checked
 * against QEMU 7.2 in spec/hmp/commands.spec.ts).
 *
 *   query-status          info status     { status, singlestep, running }
 *   query-version         info version    { qemu: { micro, minor, major }, package }
 *   query-name            info name       { name } or {}
 *   stop, cont, system_reset, system_powerdown   the same word   {}
 *   quit                  quit            {} once QEMU has closed the connection (see closesMonitor)
 *   human-monitor-command the line itself the output, CRLF kept as QMP returns it
 *
 * HMP prints failures as text; a recognised error line becomes QmpError with
 * class GenericError and QMP's desc (HMP's `Error: ` prefix removed). QMP may
 * give a more specific class for the same failure (e.g. DeviceNotFound):
 * HMP's text does not say.
 */
import { ProtocolError, QmpError, UnsupportedError } from '../errors.js';
import { hmpErrorDesc } from './error-text.js';

/** What a parser may need to know about the monitor. */
export interface HmpContext {
  /** QEMU's version from the HMP banner, e.g. `7.2.22`; null if the banner had none. */
  readonly version: string | null;
}

/** How one QMP command is carried out on HMP. */
export interface HmpMappedCommand {
  /** The HMP command line for these QMP arguments. Throws QmpError as QEMU would for bad arguments. */
  commandLine(command: string, args: Record<string, unknown>): string;
  /** The QMP return value from the line's output. Throws QmpError on error text, ProtocolError on text it cannot read. */
  parse(command: string, output: string, context: HmpContext): unknown;
}

/** A command without arguments whose HMP twin is `line`. */
function withoutArguments(line: string, parse: HmpMappedCommand['parse']): HmpMappedCommand {
  return {
    commandLine(command, args) {
      const unexpected = Object.keys(args)[0];
      if (unexpected !== undefined) throw new QmpError('GenericError', `Parameter '${unexpected}' is unexpected`, command);
      return line;
    },
    parse,
  };
}

/** Commands that return `{}` and print nothing unless they fail. */
function emptyReturn(command: string, output: string): Record<string, never> {
  throwOnErrorText(command, output);
  return {};
}

function throwOnErrorText(command: string, output: string): void {
  const desc = hmpErrorDesc(output);
  if (desc !== null) throw new QmpError('GenericError', desc, command);
}

function unreadable(command: string, line: string, output: string): ProtocolError {
  return new ProtocolError(`${command}: cannot read the output of HMP '${line}'`, output);
}

function withoutLineEnd(output: string): string {
  return output.endsWith('\r\n') ? output.slice(0, -2) : output;
}

// hmp_info_status: "VM status: running|paused", " (single step mode)", then
// " (<RunState>)" when not running and the state is not plain "paused".
const STATUS_LINE = /^VM status: (running|paused)( \(single step mode\))?(?: \(([a-z0-9-]+)\))?\r\n$/;

function parseStatus(command: string, output: string): unknown {
  throwOnErrorText(command, output);
  const match = STATUS_LINE.exec(output);
  if (!match) throw unreadable(command, 'info status', output);
  const running = match[1] === 'running';
  const status = running ? 'running' : (match[3] ?? 'paused');
  return { status, singlestep: match[2] !== undefined, running };
}

const VERSION_NUMBERS = /^(\d+)\.(\d+)\.(\d+)/;

// hmp_info_version prints major.minor.micro and the package string with
// nothing between them ("7.2.22Debian 1:7.2+..."); the banner's version says
// where the numbers end, which a pattern alone cannot when a package starts
// with a digit.
function parseVersion(command: string, output: string, context: HmpContext): unknown {
  throwOnErrorText(command, output);
  const text = withoutLineEnd(output);
  const numbers = context.version !== null && text.startsWith(context.version) ? context.version : VERSION_NUMBERS.exec(text)?.[0];
  const match = numbers === undefined ? null : VERSION_NUMBERS.exec(numbers);
  if (!match || numbers === undefined) throw unreadable(command, 'info version', output);
  return {
    qemu: { micro: Number(match[3]), minor: Number(match[2]), major: Number(match[1]) },
    package: text.slice(numbers.length),
  };
}

// hmp_info_name prints the name and a newline, or nothing when there is none.
function parseName(command: string, output: string): unknown {
  throwOnErrorText(command, output);
  return output === '' ? {} : { name: withoutLineEnd(output) };
}

const humanMonitorCommand: HmpMappedCommand = {
  commandLine(command, args) {
    for (const key of Object.keys(args)) {
      if (key === 'cpu-index') {
        throw new UnsupportedError(`${command}: 'cpu-index' is not available on a human monitor (HMP's 'cpu' command would change it for every later command)`);
      }
      if (key !== 'command-line') throw new QmpError('GenericError', `Parameter '${key}' is unexpected`, command);
    }
    const line = args['command-line'];
    if (line === undefined) throw new QmpError('GenericError', "Parameter 'command-line' is missing", command);
    if (typeof line !== 'string') throw new QmpError('GenericError', "Invalid parameter type for 'command-line', expected: string", command);
    return line;
  },
  parse: (_command, output) => output,
};

/** The QMP commands an HMP monitor's execute() accepts; anything else is UnsupportedError. */
export const HMP_COMMANDS: ReadonlyMap<string, HmpMappedCommand> = new Map<string, HmpMappedCommand>([
  ['query-status', withoutArguments('info status', parseStatus)],
  ['query-version', withoutArguments('info version', parseVersion)],
  ['query-name', withoutArguments('info name', parseName)],
  ['stop', withoutArguments('stop', emptyReturn)],
  ['cont', withoutArguments('cont', emptyReturn)],
  ['system_reset', withoutArguments('system_reset', emptyReturn)],
  ['system_powerdown', withoutArguments('system_powerdown', emptyReturn)],
  ['quit', withoutArguments('quit', emptyReturn)],
  ['human-monitor-command', humanMonitorCommand],
]);

/**
 * HMP lines after which QEMU closes the connection instead of printing a
 * prompt: `quit` and its alias `q`. The close is their reply.
 */
export function closesMonitor(commandLine: string): boolean {
  return /^\s*(?:quit|q)(?:\s|$)/.test(commandLine);
}
