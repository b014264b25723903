/**
 * Where serve's sockets are to be created, checked before anything starts,
 * so that what stands in the way is said in words naming the option (or the
 * config key) and the path: a directory that does not exist, a directory or
 * a regular file where the socket should go. A socket already there is left
 * to the listener, which replaces a stale one and refuses a live one.
 */
import { constants, lstatSync, type Stats } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { QmpxError } from '../errors.js';
import type { MonitorConfig, ServeConfig } from './config.js';

/** The command-line option of each socket key of a monitor. */
const OPTION_OF: Record<string, string> = {
  qmp: '--qmp',
  hmp: '--hmp',
  readOnly: '--read-only',
  libvirt: '--libvirt',
  libvirtReadOnly: '--libvirt-read-only',
};

/**
 * What keeps a socket from being created at `path`, in words, or undefined.
 * `directoryProblems` keeps what was found of each directory, for a check
 * of many sockets in one directory.
 */
export async function socketPlaceProblem(path: string, directoryProblems = new Map<string, Promise<string | undefined>>()): Promise<string | undefined> {
  // Synchronous for throwIfNoEntry: a path that is free, the usual case, makes no error object.
  let existing: Stats | undefined;
  try {
    existing = lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    return `${path}: ${(error as Error).message}`;
  }
  if (existing !== undefined) {
    if (existing.isDirectory()) return `${path} is a directory; give the socket's own path inside it, e.g. ${join(path, 'vm.sock')}`;
    if (existing.isFile()) return `${path} is a regular file, not a socket; refusing to replace it`;
    if (!existing.isSocket()) return `${path} exists and is not a socket; refusing to replace it`;
    return undefined;
  }
  const dir = dirname(path);
  let problem = directoryProblems.get(dir);
  if (problem === undefined) {
    problem = directoryProblem(dir);
    directoryProblems.set(dir, problem);
  }
  return problem;
}

/** What keeps sockets from being created in `dir`, in words, or undefined. */
async function directoryProblem(dir: string): Promise<string | undefined> {
  const parent = await stat(dir).catch((error: NodeJS.ErrnoException) => error);
  if (parent instanceof Error) {
    if (parent.code === 'ENOENT') return `directory ${dir} does not exist (create it first)`;
    if (parent.code === 'ENOTDIR') return `${dir} is not a directory`;
    return `directory ${dir}: ${parent.message}`;
  }
  if (!parent.isDirectory()) return `${dir} is not a directory`;
  const writable = await access(dir, constants.W_OK | constants.X_OK).then(
    () => true,
    () => false,
  );
  if (!writable) return `directory ${dir} is not writable by this user`;
  return undefined;
}

/** Throws QmpxError naming the option or key, the path and the problem of the first socket that cannot be created. */
export async function checkSocketPlaces(config: ServeConfig): Promise<void> {
  if (config.libvirt !== undefined) {
    const problem = await socketPlaceProblem(config.libvirt.path);
    if (problem !== undefined) throw new QmpxError(`libvirt socket (--libvirt, or libvirt in the config): ${problem}`);
  }
  const directoryProblems = new Map<string, Promise<string | undefined>>();
  for (const [index, monitor] of config.monitors.entries()) {
    for (const [key, path] of socketsOf(monitor)) {
      const problem = await socketPlaceProblem(path, directoryProblems);
      if (problem === undefined) continue;
      const where = monitor.fromCommandLine ? OPTION_OF[key]! : `/monitors/${index}/${key}`;
      throw new QmpxError(`${where}: ${problem}`);
    }
  }
}

function socketsOf(monitor: MonitorConfig): Array<[string, string]> {
  const sockets = { qmp: monitor.qmp, hmp: monitor.hmp, readOnly: monitor.readOnly, libvirt: monitor.libvirt, libvirtReadOnly: monitor.libvirtReadOnly };
  return Object.entries(sockets).filter((entry): entry is [string, string] => entry[1] !== undefined);
}
