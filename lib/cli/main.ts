#!/usr/bin/env node
/**
 * The `qmpx` command: one program, one subcommand per file in lib/cli.
 *
 *   qmpx exec SOCKET [--hmp] [--pretty] [--return-value] [--timeout S] CMD...
 *   qmpx events SOCKET [--event NAME] [--regex] [--no-case] [--loop] [--timeout S]
 *                      [--timestamp] [--pretty] [--json]
 *   qmpx shell SOCKET [--hmp]
 *   qmpx serve ...                      (lib/cli/serve.ts)
 *   qmpx launch --qmp PATH [--arg ARG]... [--env NAME=VALUE]... [-- QEMU ARGS...]
 *   qmpx schema [types] SOCKET [NAME]   (lib/cli/schema.ts)
 *   qmpx status CONTROL_SOCKET [--json]  (lib/cli/status.ts)
 */
import type { Command } from './commander.js';
import { readFileSync } from 'node:fs';

/**
 * Every subcommand, by name, and how to load its definition. A run loads
 * only the module of the subcommand it names, with what that module
 * imports: `qmpx exec` never loads the proxy. Help and usage errors load
 * them all.
 */
const SUBCOMMANDS: Record<string, () => Promise<Command>> = {
  exec: async () => (await import('./exec.js')).execCommand(),
  events: async () => (await import('./events.js')).eventsCommand(),
  shell: async () => (await import('./shell.js')).shellCommand(),
  serve: async () => (await import('./serve.js')).serveCommand(),
  launch: async () => (await import('./launch.js')).launchCommand(),
  schema: async () => (await import('./schema.js')).schemaCommand(),
  status: async () => (await import('./status.js')).statusCommand(),
};

/** The package version, read from package.json two levels above dist/lib/cli (or lib/cli). */
function packageVersion(): string {
  const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/**
 * The subcommands a run with these arguments needs: the one named first,
 * every one otherwise (help lists them all, and an unknown command is
 * answered with the nearest known name).
 */
function subcommandsFor(args: readonly string[]): string[] {
  const first = args[0];
  return first !== undefined && Object.hasOwn(SUBCOMMANDS, first) ? [first] : Object.keys(SUBCOMMANDS);
}

/** The program, with the subcommands `args` need registered. */
async function program(args: readonly string[]): Promise<Command> {
  const { Command } = await import('./commander.js');
  const qmpx = new Command('qmpx')
    .description('QEMU monitor client and multiplexing proxy')
    .version(packageVersion(), '-V, --version', 'print the qmpx version')
    .helpOption('-h, --help', 'show help (qmpx help COMMAND for one command)')
    .showHelpAfterError('(add --help for usage)');
  const commands = await Promise.all(subcommandsFor(args).map((name) => SUBCOMMANDS[name]!()));
  for (const command of commands) {
    // addCommand() does not pass settings down; every command should point at its help after an error.
    qmpx.addCommand(command.showHelpAfterError('(add --help for usage)'));
  }
  return qmpx;
}

// A reader that goes away (`qmpx events --loop | head -1`) ends the program quietly, as it
// ends any Unix filter; Node ignores SIGPIPE and would otherwise die on an unhandled EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '-V' || args[0] === '--version')) {
  // What commander prints for --version, without loading commander: scripts ask for it to check what they run.
  process.stdout.write(`${packageVersion()}\n`);
} else {
  await (await program(args)).parseAsync(process.argv);
}
