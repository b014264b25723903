/**
 * A real QEMU guest agent (qemu-ga) listening on a UNIX socket, so the agent
 * protocol is tested against the real program without a guest (docs/monitor-facts.md §4):
 *
 *   qemu-ga -m unix-listen -p DIR/qga.sock -t DIR/state
 *
 * The agent sends no greeting; `startQga` resolves once the socket accepts a
 * connection. Like QEMU's monitors it serves one client at a time.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnDaemon, findExecutable, DEFAULT_READY_TIMEOUT_MS, type Daemon } from './daemon.js';
import { createTempDir, removeTempDir, socketPathIn } from './temp-dir.js';

/** What `startQga` should run; every field is optional. */
export interface QgaOptions {
  /** Appended to the command line. */
  args?: readonly string[];
  /** The agent binary (a name looked up in PATH and sbin, or a path); default `qemu-ga`. */
  binary?: string;
  /** Deadline for the socket to accept connections; default 10 s. */
  readyTimeoutMs?: number;
}

/** A running guest agent; see `Daemon` for `stop()`, `kill()` and the exit helpers. */
export interface QgaInstance extends Daemon {
  /** The agent's socket (`DIR/qga.sock`). */
  readonly qgaPath: string;
}

/**
 * Spawns qemu-ga in a fresh temp dir and resolves once its socket accepts
 * connections. Rejects when the binary is missing (naming the Debian
 * package), when the agent exits during start, or after `readyTimeoutMs`.
 */
export async function startQga(options: QgaOptions = {}): Promise<QgaInstance> {
  const binary = findExecutable(options.binary ?? 'qemu-ga', 'qemu-guest-agent');
  const dir = createTempDir('qga');
  try {
    const qgaPath = socketPathIn(dir, 'qga.sock');
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir); // qemu-ga refuses to start when the -t dir is missing
    const args = ['-m', 'unix-listen', '-p', qgaPath, '-t', stateDir, ...(options.args ?? [])];
    const daemon = await spawnDaemon('qemu-ga', binary, args, dir);
    try {
      await daemon.waitUntilServing(qgaPath, false, Date.now() + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS));
    } catch (error) {
      await daemon.kill();
      throw error;
    }
    return Object.assign(daemon, { qgaPath });
  } catch (error) {
    await removeTempDir(dir);
    throw error;
  }
}
