/**
 * What a person types, turned into one QMP command text for the pass-through
 * API. Shared by `qmpx exec` (words from the shell's argv) and `qmpx shell`
 * (words from one typed line).
 *
 * The forms, tried in this order:
 *   1. all words joined with spaces are a JSON object: sent as is (virsh);
 *   2. `NAME`: `{"execute":"NAME"}` (virsh);
 *   3. `NAME JSON-OBJECT...`: the rest joined with spaces is the arguments (virsh);
 *   4. `NAME key=value...`: qmp-shell's form; dotted keys nest
 *      (`file.driver=file` → `{"file":{"driver":"file"}}`), a value that is
 *      JSON is used as that JSON, anything else as a string;
 *   5. `NAME "a":1 "b":2`: virsh joins the rest with commas inside braces.
 * Anything else is refused with a CommandLineError saying why.
 *
 * virsh takes the command name from the first argv element, whole: a quoted
 * `'not json at all'` is one (unknown) command name, as the captures show.
 * Argument text is embedded as written, never re-serialised, so number tokens
 * reach QEMU exactly (docs/design.md invariant 5).
 */
import { fstatSync, readdirSync, readlinkSync } from 'node:fs';
import { InvalidArgumentError as CommanderArgumentError } from './commander.js';
import { isJsonObjectText } from './json-text.js';

/** The words cannot be made into a QMP command. */
export class CommandLineError extends Error {
  override readonly name = 'CommandLineError';
}

const KEY_VALUE = /^([A-Za-z0-9_][A-Za-z0-9_.+-]*)=(.*)$/s;

/** Builds the QMP command text for `words` (see the forms above). Throws CommandLineError. */
export function buildQmpCommand(words: readonly string[]): string {
  if (words.length === 0) throw new CommandLineError('no command given');
  const whole = words.join(' ');
  if (isJsonObjectText(whole)) return whole;
  const [name, ...rest] = words as [string, ...string[]];
  const execute = `{"execute":${JSON.stringify(name)}`;
  if (rest.length === 0) return `${execute}}`;
  const restJoined = rest.join(' ');
  if (isJsonObjectText(restJoined)) return `${execute},"arguments":${restJoined}}`;
  if (rest.every((word) => KEY_VALUE.test(word))) return `${execute},"arguments":${keyValueArguments(rest)}}`;
  const braced = `{${rest.join(',')}}`;
  if (isJsonObjectText(braced)) return `${execute},"arguments":${braced}}`;
  const stray = rest.find((word) => !KEY_VALUE.test(word));
  throw new CommandLineError(
    `cannot make arguments of ${JSON.stringify(restJoined)}: expected a JSON object or key=value pairs, got ${JSON.stringify(stray)}`,
  );
}

/** A node of the arguments tree: raw JSON text at the leaves. */
type ArgumentNode = { leaf: string } | { members: Map<string, ArgumentNode> };

/** `key=value` words to the JSON text of an arguments object. Throws CommandLineError on conflicting keys. */
export function keyValueArguments(pairs: readonly string[]): string {
  const root = new Map<string, ArgumentNode>();
  for (const pair of pairs) {
    const [, key, value] = KEY_VALUE.exec(pair)!;
    const path = key!.split('.');
    if (path.some((part) => part === '')) throw new CommandLineError(`empty name in key ${JSON.stringify(key)}`);
    let members = root;
    for (let index = 0; index < path.length - 1; index++) {
      const part = path[index]!;
      let node = members.get(part);
      if (node === undefined) {
        node = { members: new Map() };
        members.set(part, node);
      } else if ('leaf' in node) {
        throw new CommandLineError(`cannot use "${path.slice(0, index + 1).join('.')}" as both a value and an object`);
      }
      members = node.members;
    }
    const last = path[path.length - 1]!;
    const existing = members.get(last);
    if (existing !== undefined) {
      throw new CommandLineError(
        'leaf' in existing ? `cannot set "${key}" twice` : `cannot use "${key}" as both a value and an object`,
      );
    }
    members.set(last, { leaf: valueText(value!) });
  }
  return serialise(root);
}

/** A value that is JSON stays that JSON text, exactly; anything else becomes a JSON string. */
function valueText(value: string): string {
  try {
    JSON.parse(value);
    return value.trim();
  } catch {
    return JSON.stringify(value);
  }
}

function serialise(members: Map<string, ArgumentNode>): string {
  const parts = [...members].map(([key, node]) => `${JSON.stringify(key)}:${'leaf' in node ? node.leaf : serialise(node.members)}`);
  return `{${parts.join(',')}}`;
}

/**
 * Splits a typed line into words the way qmp-shell does: runs of non-space
 * characters, where a double- or single-quoted part may contain spaces. The
 * quotes stay in the word (`name="a b"` stays `name="a b"`, whose value is
 * then the JSON string `a b`). A quote with no partner is an ordinary character.
 */
export function splitLine(line: string): string[] {
  return line.match(/(?:[^\s"']|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|["'])+/g) ?? [];
}

/**
 * Commander value parser for `--pass-fds N,M` (virsh's spelling): the
 * numbers of file descriptors open in the qmpx process, usually opened by
 * the shell (`3</tmp/disk.img`).
 */
export function parsePassFds(value: string): number[] {
  const words = value.split(',');
  if (!words.every((word) => /^\s*\d{1,9}\s*$/.test(word))) {
    throw new CommanderArgumentError(`expected file descriptor numbers separated by commas, like 3,4; got ${JSON.stringify(value)}`);
  }
  return words.map(Number);
}

/**
 * Why `fd` cannot be passed, if it cannot: it is not open, or it is one of
 * the process's own (Node's event loop opens epoll and eventfd descriptors
 * and pipes of which it holds both ends, at numbers from 3 up, so a number
 * the shell did not open may still be open). The second check reads
 * /proc/self/fd and is skipped where there is none.
 */
export function passFdProblem(fd: number): string | undefined {
  try {
    fstatSync(fd);
  } catch {
    return 'is not open in qmpx';
  }
  const target = fdTarget(fd);
  if (target === undefined) return undefined;
  const ownEnd = target.startsWith('pipe:') && openFdTargets().filter((other) => other === target).length > 1;
  if (target === 'anon_inode:[eventpoll]' || target === 'anon_inode:[eventfd]' || ownEnd) {
    return `was not opened by the shell: it is one of qmpx's own (${target})`;
  }
  return undefined;
}

function fdTarget(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

function openFdTargets(): string[] {
  try {
    return readdirSync('/proc/self/fd').flatMap((entry) => fdTarget(Number(entry)) ?? []);
  } catch {
    return [];
  }
}
