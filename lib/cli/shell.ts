/**
 * `qmpx shell`: an interactive monitor session in the spirit of QEMU's
 * qmp-shell, on any monitor socket.
 *
 *   qmpx shell SOCKET [--hmp | --agent] [--pretty] [--history FILE] [-v] [-l FILE]
 *
 *   (QEMU) query-status                       NAME [key=value...] (qmp-shell)
 *   (QEMU) {"execute": "query-name"}          raw JSON, sent as is
 *   (QEMU) qom-get {"path": "/machine", ...}  NAME JSON-ARGS (virsh)
 *   (QEMU) /hmp                               toggle HMP mode: lines go to the human monitor
 *   (qemu) info status
 *   (QEMU) transaction(                       qmp-shell's batch: the lines up to `)` are the
 *   TRANS> ACTION key=value...                actions of one `transaction` command, sent at `)`
 *   TRANS> )
 *
 * Lines are read with node:readline: history (saved to the history file
 * after every line), TAB completion (lib/cli/shell-completion.ts, loaded
 * before the first prompt). Events are printed as they arrive; while a line
 * is being typed, the prompt and the typed text are cleared, the event is
 * printed, and both are redrawn with the cursor where it was. Colour only
 * when stdout is a terminal and NO_COLOR is unset. When stdin is not a
 * terminal no prompt is printed, so `qmpx shell SOCK < script` works.
 *
 * Exit status: 0 at end of input or /quit, or when QEMU closed the
 * connection as expected (quit); 2 when the connection was lost.
 */
import { Command } from './commander.js';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { clearScreenDown, createInterface, cursorTo, moveCursor, type Interface } from 'node:readline';
import type { Monitor } from '../index.js';
import { MonitorCommandFlags, monitorCommand } from '../passthrough/index.js';
import { stringifyJson } from '../qmp/json.js';
import type { QmpEvent } from '../qmp/wire.js';
import { buildQmpCommand, splitLine } from './command-line.js';
import { connectForCli, EXIT_OK, EXIT_UNREACHABLE, isConnectionProblem, oneLine, runCli } from './common.js';
import { isJsonObjectText, memberText, compactJson, prettyJson } from './json-text.js';
import { hmpCommandNames, hmpInfoNames, ShellCompleter, type CompletionData, type SchemaEntity } from './shell-completion.js';
import { TRANSACTION_PROMPT, TransactionBuilder } from './shell-transaction.js';

/** The options commander hands to the action. */
export interface ShellCliOptions {
  hmp?: boolean;
  pretty?: boolean;
  history?: string;
  agent?: boolean;
  verbose?: boolean;
  log?: string;
}

const HISTORY_SIZE = 1000;
const META_COMMANDS = ['/help', '/hmp', '/qmp', '/pretty', '/quit'];
const SHELL_HELP = `  NAME [key=value ...]   run a QMP command; a value is JSON when it parses, else a string;
                         dotted keys nest (file.filename=x.img)
  NAME {JSON}            run a QMP command with JSON arguments
  {"execute": ...}       send a JSON command as is
  /hmp                   toggle HMP mode (lines are human monitor commands)
  /qmp                   back to QMP mode
  /pretty                toggle indented replies
  transaction(           start a transaction: each line up to ")" is one action
                         (NAME key=value...), all sent as ONE transaction command at ")";
                         also on one line: transaction( NAME key=value ... )
  /help, /quit           this text; leave (Ctrl-D also leaves)
  TAB completes command and argument names; Up/Down recall history
`;

/** The `shell` subcommand, ready for `program.addCommand()`. */
export function shellCommand(): Command {
  return new Command('shell')
    .description('interactive monitor shell: QMP with key=value or JSON, or HMP; history and TAB completion')
    .argument('<socket>', 'the monitor: PATH, unix:PATH or tcp:HOST:PORT')
    .option('--hmp', 'start in HMP mode (toggle with /hmp)')
    .option('--pretty', 'indent JSON replies by two spaces (toggle with /pretty)')
    .option('--history <file>', 'history file (default $QMPX_HISTORY, else ~/.qmpx_history)')
    .option('--agent', "SOCKET is a guest agent's (qemu-ga sends no greeting): lines are guest-agent commands")
    .option('-v, --verbose', 'print the JSON of each command before its reply')
    .option('-l, --log <file>', 'append a transcript (each line typed, what was sent with -v, the reply) to FILE')
    .addHelpText('after', `\nIn the shell:\n${SHELL_HELP}\nExample:\n  qmpx shell /tmp/vm.qmp`)
    .action((socket: string, options: ShellCliOptions) => runCli('shell', () => runShell(socket, options)));
}

/** ANSI colours, or none. */
function painter(enabled: boolean): (code: string, text: string) => string {
  return enabled ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_code, text) => text;
}

async function runShell(socket: string, options: ShellCliOptions): Promise<number> {
  const monitor = await connectForCli(socket, undefined, options.agent ? { protocol: 'qga' } : {});
  const input = process.stdin;
  const output = process.stdout;
  const terminal = input.isTTY === true && output.isTTY === true;
  const paint = painter(output.isTTY === true && (process.env.NO_COLOR ?? '') === '');
  const hmpOnly = monitor.protocol === 'hmp';
  let mode: 'qmp' | 'hmp' = options.hmp || hmpOnly ? 'hmp' : 'qmp';
  let pretty = options.pretty === true;
  const historyFile = options.history ?? (process.env.QMPX_HISTORY || join(homedir(), '.qmpx_history'));
  const completer = new ShellCompleter(await loadCompletionData(monitor), META_COMMANDS);

  const transaction = new TransactionBuilder();
  const promptLabel = (): string => (mode === 'hmp' ? '(qemu)' : transaction.open ? TRANSACTION_PROMPT : '(QEMU)');
  const promptText = (): string => paint(mode === 'hmp' ? '1;33' : transaction.open ? '1;35' : '1;32', promptLabel()) + ' ';
  const rl: Interface = createInterface({
    input,
    output,
    terminal,
    history: terminal ? readHistory(historyFile) : [],
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: (line: string) => completer.complete(line, mode),
  });
  rl.setPrompt(promptText());
  // True while readline shows a prompt and the user may be typing: output must then go above the line.
  let prompting = false;
  const prompt = (): void => {
    if (!terminal) return;
    rl.setPrompt(promptText());
    prompting = true;
    rl.prompt();
  };
  const print = (text: string): void => {
    if (!prompting) {
      output.write(text);
      return;
    }
    const { rows } = rl.getCursorPos();
    moveCursor(output, 0, -rows);
    cursorTo(output, 0);
    clearScreenDown(output);
    output.write(text);
    // readline redraws from `prevRows` rows above the cursor; the cursor is now at the top of the cleared area.
    (rl as unknown as { prevRows: number }).prevRows = 0;
    rl.prompt(true);
  };
  rl.on('history', (history: string[]) => writeHistory(historyFile, history));
  rl.on('SIGINT', () => {
    if (rl.line !== '') {
      // Like a shell: the abandoned line stays on screen marked ^C, and a fresh prompt follows.
      // clearLine() is readline's own (what Node's REPL calls): cursor to the end, newline, empty buffer.
      rl.write(null, { ctrl: true, name: 'e' });
      output.write('^C');
      (rl as unknown as { clearLine(): void }).clearLine();
      prompt();
    } else if (transaction.cancel()) {
      print(paint('2', '(transaction cancelled: nothing was sent)') + '\n');
      prompt();
    } else {
      print(paint('2', '(Ctrl-D or /quit to leave)') + '\n');
    }
  });
  const events = monitor.events$.subscribe((event) => print(paint('36', formatShellEvent(event)) + '\n'));

  const version = monitor.greeting?.QMP.version.qemu;
  if (terminal) {
    const what = version ? `QEMU ${version.major}.${version.minor}.${version.micro}` : 'QEMU';
    output.write(paint('2', `Connected to ${what} (${monitor.protocol.toUpperCase()}) on ${socket}. /help for help.`) + '\n');
  }

  let lost = false;
  let connectionEnded = false;
  let leaving = false;
  const closed = monitor.closed.then((info) => {
    connectionEnded = true;
    lost = !info.expected;
    if (leaving) return;
    print(paint(lost ? '31' : '2', `the monitor closed the connection${info.cause ? `: ${info.cause.message}` : ''}`) + '\n');
    rl.close();
  });
  try {
    prompt();
    for await (const line of rl) {
      prompting = false;
      const trimmed = line.trim();
      if (trimmed === '/quit' || trimmed === '/exit') break;
      if (trimmed.startsWith('/')) {
        if (trimmed === '/hmp') mode = mode === 'hmp' && !hmpOnly ? 'qmp' : 'hmp';
        else if (trimmed === '/qmp' && hmpOnly) print(paint('31', 'this monitor speaks only HMP') + '\n');
        else if (trimmed === '/qmp') mode = 'qmp';
        else if (trimmed === '/pretty') pretty = !pretty;
        else if (trimmed === '/help') print(SHELL_HELP);
        else print(paint('31', `unknown shell command ${trimmed}; /help lists them`) + '\n');
      } else if (trimmed !== '') {
        const label = promptLabel();
        const result = await runLine(monitor, trimmed, mode, transaction, pretty, options.verbose === true, paint);
        print(result);
        if (options.log !== undefined) appendFileSync(options.log, `${label} ${trimmed}\n${withoutColours(result)}`);
      }
      if (connectionEnded) break;
      prompt();
    }
  } finally {
    // Ctrl-D leaves the cursor after the prompt: end that line before the user's shell prompts.
    if (prompting) output.write('\n');
    prompting = false;
    events.unsubscribe();
    rl.close();
    leaving = true;
    await monitor.close();
    await closed;
  }
  return lost ? EXIT_UNREACHABLE : EXIT_OK;
}

/** Runs one typed line and returns what to print (ending in a newline; empty for a line kept in a transaction). */
async function runLine(
  monitor: Monitor,
  line: string,
  mode: 'qmp' | 'hmp',
  transaction: TransactionBuilder,
  pretty: boolean,
  verbose: boolean,
  paint: (code: string, text: string) => string,
): Promise<string> {
  try {
    if (mode === 'hmp') {
      const text = (await monitorCommand(monitor, line, MonitorCommandFlags.HMP)).replaceAll('\r\n', '\n');
      return text === '' || text.endsWith('\n') ? text : `${text}\n`;
    }
    const words = splitLine(line);
    const step = isJsonObjectText(line) && !transaction.open ? undefined : transaction.take(words);
    if (step?.kind === 'kept') return '';
    const commandText = step?.kind === 'complete' ? step.commandText : isJsonObjectText(line) ? line : buildQmpCommand(words);
    const sent = verbose ? paint('2', pretty ? prettyJson(commandText) : compactJson(commandText)) + '\n' : '';
    const reply = await monitorCommand(monitor, commandText, MonitorCommandFlags.NONE);
    const formatted = pretty ? prettyJson(reply) : compactJson(reply);
    return `${sent}${memberText(reply, 'return') === undefined ? paint('31', formatted) : formatted}\n`;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return paint('31', `${isConnectionProblem(error) ? '' : 'error: '}${oneLine(message)}`) + '\n';
  }
}

/** Text as a file should keep it: without the terminal's colour codes. */
function withoutColours(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[\d;]*m/g, '');
}

/** An event as the shell shows it: virsh's line without the domain. */
export function formatShellEvent(event: QmpEvent): string {
  const micros = String(event.timestamp.microseconds).padStart(6, '0');
  const details = event.data === undefined ? '<null>' : stringifyJson(event.data);
  return `event ${event.event} at ${event.timestamp.seconds}.${micros}: ${details}`;
}

/** Everything completion needs; any part the monitor cannot give is left empty. */
async function loadCompletionData(monitor: Monitor): Promise<CompletionData> {
  const attempt = async <T>(load: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await load();
    } catch {
      return fallback;
    }
  };
  const qmp = monitor.protocol === 'qmp';
  const [commands, schema, help, info] = await Promise.all([
    qmp ? attempt(() => monitor.execute<Array<{ name: string }>>('query-commands'), []) : [],
    qmp ? attempt(() => monitor.execute<SchemaEntity[]>('query-qmp-schema'), []) : [],
    attempt(() => monitor.hmp('help'), ''),
    attempt(() => monitor.hmp('info'), ''),
  ]);
  return {
    qmpCommands: commands.map((command) => command.name),
    schema,
    hmpCommands: hmpCommandNames(help),
    hmpInfo: hmpInfoNames(info),
  };
}

/** History entries, newest first (readline's order), from a file that lists them oldest first. */
function readHistory(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').reverse().slice(0, HISTORY_SIZE);
  } catch {
    return [];
  }
}

function writeHistory(file: string, newestFirst: readonly string[]): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, [...newestFirst].reverse().join('\n') + '\n', { mode: 0o600 });
  } catch (error) {
    process.stderr.write(`qmpx shell: cannot save history to ${file}: ${(error as Error).message}\n`);
  }
}
