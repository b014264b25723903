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
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { eventsCommand } from './events.js';
import { execCommand } from './exec.js';
import { launchCommand } from './launch.js';
import { schemaCommand } from './schema.js';
import { serveCommand } from './serve.js';
import { shellCommand } from './shell.js';

/** The package version, read from package.json two levels above dist/lib/cli (or lib/cli). */
function packageVersion(): string {
  const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** The whole program, with every subcommand registered. */
function program(): Command {
  const qmpx = new Command('qmpx')
    .description('QEMU monitor client and multiplexing proxy')
    .version(packageVersion(), '-V, --version', 'print the qmpx version')
    .helpOption('-h, --help', 'show help (qmpx help COMMAND for one command)')
    .showHelpAfterError('(add --help for usage)')
    .addCommand(execCommand())
    .addCommand(eventsCommand())
    .addCommand(shellCommand())
    .addCommand(serveCommand())
    .addCommand(launchCommand())
    .addCommand(schemaCommand());
  // addCommand() does not pass settings down; every command should point at its help after an error.
  for (const command of qmpx.commands) command.showHelpAfterError('(add --help for usage)');
  return qmpx;
}

// A reader that goes away (`qmpx events --loop | head -1`) ends the program quietly, as it
// ends any Unix filter; Node ignores SIGPIPE and would otherwise die on an unhandled EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});

await program().parseAsync(process.argv);
