/**
 * What a request's `fds` option may hold and which commands may carry it,
 * checked before anything is queued. QEMU keeps an fd that arrives with a
 * command that takes none, and hands it to the next `getfd` or `add-fd`,
 * whoever sends it (docs/monitor-facts.md §2): fds are therefore sent only
 * with the commands that take them.
 */
import { fstatSync } from 'node:fs';
import { InvalidArgumentError, UnsupportedError } from '../errors.js';

/** The QMP commands that take the fds sent with them. */
const QMP_FD_COMMANDS: ReadonlySet<string> = new Set(['getfd', 'add-fd']);

/** QEMU's socket chardev keeps at most this many fds of one message and closes the rest. */
export const MAX_FDS_PER_COMMAND = 16;

/** Whether the QMP command `command` takes the fds sent with it. */
export function takesFds(command: string): boolean {
  return QMP_FD_COMMANDS.has(command);
}

/** Whether the human-monitor line takes the fds sent with it (`getfd NAME`). */
export function hmpLineTakesFds(commandLine: string): boolean {
  return /^\s*getfd(\s|$)/.test(commandLine);
}

/** The fds asked for, or undefined when none are (absent or empty). */
export function requestedFds(fds: readonly number[] | undefined): readonly number[] | undefined {
  return fds === undefined || fds.length === 0 ? undefined : fds;
}

/**
 * Why `fds` cannot be sent with `command`, if they cannot: not a list of
 * open file descriptors (InvalidArgumentError), more than QEMU keeps, or a
 * command that takes none (UnsupportedError, with `takes` its own rule).
 */
export function fdsRefusal(command: string, fds: unknown, commandTakesFds: boolean, takesWhat: string): Error | undefined {
  if (!Array.isArray(fds)) return new InvalidArgumentError(`${command}: fds must be an array of file descriptor numbers, got ${typeof fds}`);
  for (const fd of fds as unknown[]) {
    if (!Number.isSafeInteger(fd) || (fd as number) < 0 || (fd as number) > 0x7fffffff) {
      return new InvalidArgumentError(`${command}: fds must hold file descriptor numbers, got ${JSON.stringify(fd) ?? typeof fd}`);
    }
    if (!isOpen(fd as number)) return new InvalidArgumentError(`${command}: file descriptor ${fd as number} is not open in this process`);
  }
  if (fds.length > MAX_FDS_PER_COMMAND) {
    return new UnsupportedError(`${command}: at most ${MAX_FDS_PER_COMMAND} file descriptors per command (QEMU closes the rest), got ${fds.length}`);
  }
  if (command === 'human-monitor-command') {
    return new UnsupportedError(
      `${command}: file descriptors cannot go through human-monitor-command (QEMU runs the line without them and keeps them for the next getfd or add-fd)`,
    );
  }
  if (!commandTakesFds) {
    return new UnsupportedError(
      `${command}: takes no file descriptors; ${takesWhat} (QEMU would keep them for the next command that does, whoever sends it)`,
    );
  }
  return undefined;
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}
