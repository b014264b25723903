/**
 * Private temporary directories for spec helpers (QEMU and qemu-ga sockets,
 * fake peer sockets). Every directory is removed when its owner is done and,
 * as a last resort, when the test process exits, so a failed test leaves
 * nothing behind in the temp dir.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Linux `sockaddr_un.sun_path` holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

const liveTempDirs = new Set<string>();
let exitCleanupRegistered = false;

/**
 * Creates a fresh directory `os.tmpdir()/qmpx-<label>-XXXXXX`, removed at
 * process exit unless `removeTempDir` removed it earlier.
 */
export function createTempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `qmpx-${label}-`));
  liveTempDirs.add(dir);
  if (!exitCleanupRegistered) {
    exitCleanupRegistered = true;
    // 'exit' handlers must be synchronous: rmSync, not rm.
    process.on('exit', () => {
      for (const leftover of liveTempDirs) rmSync(leftover, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Removes a directory made by `createTempDir` (no error if already gone). */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  liveTempDirs.delete(dir);
}

/**
 * `join(dir, name)`, refusing paths a UNIX socket cannot bind to: with a long
 * TMPDIR the kernel would reject the path with a far less helpful error.
 */
export function socketPathIn(dir: string, name: string): string {
  const socketPath = join(dir, name);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes; set TMPDIR to a shorter directory`,
    );
  }
  return socketPath;
}
