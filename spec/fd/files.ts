/**
 * Files for the fd specs: opened by the test (so the test owns the fd), and
 * a look into a process's fd table (`/proc/PID/fd`) to see which of them it
 * holds.
 */
import { closeSync, fstatSync, openSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Creates `dir/name` with `content` and opens it read-write; returns its path and the open fd. */
export function openTestFile(dir: string, name: string, content = 'qmpx fd test\n'): { path: string; fd: number } {
  const path = join(dir, name);
  writeFileSync(path, content);
  return { path, fd: openSync(path, 'r+') };
}

/** How many of `pid`'s fds name `path`. */
export function fdsOn(pid: number, path: string): number {
  let count = 0;
  for (const entry of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${entry}`) === path) count++;
    } catch {
      // closed while the directory was read
    }
  }
  return count;
}

/** What `pid`'s fd `fd` names. */
export function fdTarget(pid: number, fd: number): string {
  return readlinkSync(`/proc/${pid}/fd/${fd}`);
}

/** Whether `fd` is open in this process. */
export function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Closes `fd`; throws if it was not open (so a test sees that the caller still owned it). */
export function closeOwned(fd: number): void {
  closeSync(fd);
}
