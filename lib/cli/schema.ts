/**
 * `qmpx schema`: what the connected QEMU's schema says, for people.
 *
 *   qmpx schema SOCKET             every command and event, one per line
 *   qmpx schema SOCKET NAME        one command's (or event's) arguments, return type and features
 *   qmpx schema types SOCKET       TypeScript declarations for this QEMU (lib/qapi/emit.ts)
 *
 * The schema is QEMU's own `query-qmp-schema`, so it lists exactly what the
 * binary behind the socket takes. Which events a command may cause is not
 * in the schema, so it is not shown.
 */
import { Command } from './commander.js';
import type { Monitor } from '../monitor.js';
import { emitTypes } from '../qapi/emit.js';
import { readSchema, type QapiMember, type QapiObject, type QapiSchema } from '../qapi/model.js';
import { schemaChecksFor } from '../qapi/validate.js';
import { CliError, connectForCli, EXIT_FAILED, EXIT_OK, runCli } from './common.js';

export function schemaCommand(): Command {
  return new Command('schema')
    .description("show the QEMU's schema: its commands and events, one of them in detail, or TypeScript types for it")
    .argument('<socket>', "the monitor (PATH, unix:PATH or tcp:HOST:PORT), or 'types' followed by the monitor")
    .argument('[name]', 'a command or event to show (with types: the monitor)')
    .addHelpText(
      'after',
      `
Examples:
  qmpx schema /tmp/vm.qmp                     list commands and events
  qmpx schema /tmp/vm.qmp blockdev-add        arguments, return type, features
  qmpx schema types /tmp/vm.qmp > qemu.d.ts   TypeScript command and event maps`,
    )
    .action((first: string, second: string | undefined) =>
      runCli('schema', () => (first === 'types' && second !== undefined ? printTypes(second) : printSchema(first, second))),
    );
}

async function withSchema<T>(socket: string, body: (schema: QapiSchema, monitor: Monitor) => T): Promise<T> {
  const monitor = await connectForCli(socket);
  try {
    return body(readSchema(await monitor.execute('query-qmp-schema')), monitor);
  } finally {
    await monitor.close();
  }
}

/** "QEMU 7.2.22" from the greeting. */
export function qemuVersionText(monitor: Monitor): string {
  const version = monitor.greeting?.QMP.version.qemu;
  return version === undefined ? 'QEMU' : `QEMU ${version.major}.${version.minor}.${version.micro}`;
}

async function printTypes(socket: string): Promise<number> {
  const text = await withSchema(socket, (schema, monitor) => emitTypes(schema, { source: qemuVersionText(monitor) }));
  process.stdout.write(text);
  return EXIT_OK;
}

async function printSchema(socket: string, name: string | undefined): Promise<number> {
  const text = await withSchema(socket, (schema) => (name === undefined ? listing(schema) : describe(schema, name)));
  process.stdout.write(text);
  return EXIT_OK;
}

function featureText(features: readonly string[]): string {
  return features.length === 0 ? '' : `  [${features.join(', ')}]`;
}

export function listing(schema: QapiSchema): string {
  const lines = [`commands (${schema.commands.size}):`];
  for (const name of [...schema.commands.keys()].sort()) lines.push(`  ${name}${featureText(schema.commands.get(name)!.features)}`);
  lines.push(`events (${schema.events.size}):`);
  for (const name of [...schema.events.keys()].sort()) lines.push(`  ${name}${featureText(schema.events.get(name)!.features)}`);
  return `${lines.join('\n')}\n`;
}

/** One command or event, readable in a terminal. Throws CliError if the schema has neither. */
export function describe(schema: QapiSchema, name: string): string {
  const command = schema.commands.get(name);
  const event = schema.events.get(name);
  if (command === undefined && event === undefined) throw new CliError(`the schema of this QEMU has no command or event '${name}'`, EXIT_FAILED);
  const lines: string[] = [];
  if (command !== undefined) {
    lines.push(`command ${name}${featureText(command.features)}${command.allowOob ? '  (allows exec-oob)' : ''}`);
    lines.push(`arguments: ${schema.nameOf(command.argType)}`, ...typeLines(schema, command.argType, '  '));
    lines.push(`returns: ${typeText(schema, command.retType)}`, ...typeLines(schema, command.retType, '  '));
  } else {
    lines.push(`event ${name}${featureText(event!.features)}`);
    lines.push(`data: ${schema.nameOf(event!.argType)}`, ...typeLines(schema, event!.argType, '  '));
  }
  return `${lines.join('\n')}\n`;
}

/** A type as one phrase: its name, plus its values for a short enum or its branches for an alternate. */
function typeText(schema: QapiSchema, id: string): string {
  const type = schema.type(id);
  switch (type.kind) {
    case 'builtin':
      return type.id === 'str' ? 'string' : type.id === 'any' ? 'any JSON value' : type.id;
    case 'array':
      return `array of ${typeText(schema, type.element)}`;
    case 'enum':
      return `${schema.nameOf(id)} (one of: ${type.values.join(', ')})`;
    case 'alternate':
      return `${schema.nameOf(id)} (${type.members.map((member) => typeText(schema, member)).join(' | ')})`;
    case 'object':
      return schema.nameOf(id);
  }
}

/** The members of an object (and of each branch of a union), one per line; nothing for other types. */
function typeLines(schema: QapiSchema, id: string, indent: string): string[] {
  let type = schema.type(id);
  while (type.kind === 'array') type = schema.type(type.element);
  if (type.kind !== 'object') return [];
  const lines = memberLines(schema, type.members, indent);
  if (type.tag !== undefined) lines.push(...branchLines(schema, type, indent));
  return lines;
}

function memberLines(schema: QapiSchema, members: readonly QapiMember[], indent: string): string[] {
  return members.map((member) => `${indent}${member.name}${member.optional ? '?' : ''}: ${typeText(schema, member.type)}${featureText(member.features)}`);
}

function branchLines(schema: QapiSchema, union: QapiObject, indent: string): string[] {
  const lines: string[] = [];
  const byType = new Map<string, string[]>();
  for (const variant of union.variants) byType.set(variant.type, [...(byType.get(variant.type) ?? []), variant.case]);
  for (const [branch, cases] of byType) {
    const branchType = schema.type(branch);
    const members = branchType.kind === 'object' ? branchType.members : [];
    lines.push(`${indent}when ${union.tag} is ${cases.join(' | ')}:${members.length === 0 ? ' (no more members)' : ''}`);
    lines.push(...memberLines(schema, members, `${indent}  `));
  }
  return lines;
}

/**
 * For `qmpx exec --validate`: QEMU's words for what is wrong with the
 * command text's arguments, or undefined when the schema takes them (or
 * the text is not a command object, which is left to QEMU to answer).
 */
export async function argumentProblem(monitor: Monitor, commandText: string): Promise<string | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(commandText);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { execute, arguments: args } = parsed as { execute?: unknown; arguments?: unknown };
  if (typeof execute !== 'string' || (args !== undefined && (typeof args !== 'object' || args === null))) return undefined;
  const checks = await schemaChecksFor(await monitor.execute('query-qmp-schema'));
  return checks.problemWith(execute, args as object | undefined)?.desc;
}
