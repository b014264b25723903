/**
 * Lifecycle of the programs specs run as peers (QEMU, qemu-ga): find the
 * binary, spawn it in a private temp dir, wait until its sockets serve, stop
 * it, and make sure none outlives the test process.
 *
 * The child stays in the test process's process group, so the spec runner's
 * group kill on a deadline reaches it too. The child is unref'd: a test that
 * forgets `stop()` does not hang the process; the exit hook kills it instead
 * and says so on stderr.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { removeTempDir } from './temp-dir.js';

/** How a daemon ended: exactly one of `code` and `signal` is non-null. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawned peer program and its private directory. */
export interface Daemon {
  /** Private temp dir holding the daemon's sockets; removed by `stop()`. */
  readonly dir: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** The last 64 KiB the daemon wrote to stderr, for failure messages. */
  stderrText(): string;
  /** Resolves when the daemon exits on its own (e.g. after `quit`); rejects after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<ExitStatus>;
  /**
   * Sends `signal` (default SIGTERM), waits up to 10 s for the exit, then
   * SIGKILLs; removes `dir`. Idempotent: later calls return the same status.
   */
  stop(signal?: NodeJS.Signals): Promise<ExitStatus>;
  /** `stop('SIGKILL')`; also escalates a `stop()` already in progress. */
  kill(): Promise<ExitStatus>;
}

/** Interval between readiness probes; QEMU needs ~25 ms to listen (docs/monitor-facts.md §1). */
const READY_POLL_INTERVAL_MS = 10;
/** Default deadline for a daemon to serve all its sockets. */
export const DEFAULT_READY_TIMEOUT_MS = 10_000;
/** How long `stop()` waits after its signal before escalating to SIGKILL. */
const STOP_GRACE_MS = 10_000;
/** How long anything waits for a SIGKILLed process to disappear. */
const KILL_GRACE_MS = 5_000;
const STDERR_TAIL_BYTES = 64 * 1024;
/** Debian installs some daemons (qemu-ga) in sbin, which a non-root PATH may lack. */
const EXTRA_BINARY_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const liveDaemons = new Set<SpawnedDaemon>();
let exitHookRegistered = false;

/**
 * Resolves `name` (a bare name searched in PATH and the sbin/bin dirs, or a
 * path) to an executable. Throws, naming `debianPackage`, when there is none:
 * specs that need a real peer must fail, not skip, on a machine without it.
 */
export function findExecutable(name: string, debianPackage: string): string {
  const candidates = name.includes('/')
    ? [name]
    : [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_BINARY_DIRS].map((dir) =>
        join(dir, name),
      );
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next one
    }
  }
  throw new Error(
    `${name} not found (searched PATH and ${EXTRA_BINARY_DIRS.join(', ')}); install the Debian package ${debianPackage}`,
  );
}

/**
 * Spawns `binary args` with `dir` as its private dir and resolves once the
 * process exists. Rejects if it cannot be spawned.
 */
export async function spawnDaemon(label: string, binary: string, args: readonly string[], dir: string): Promise<SpawnedDaemon> {
  const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new Error(`cannot spawn ${label} (${binary}): ${error.message}`, { cause: error })));
  });
  const daemon = new SpawnedDaemon(label, dir, child);
  liveDaemons.add(daemon);
  registerExitHook();
  return daemon;
}

/** A running daemon; see `Daemon` for the public contract. */
export class SpawnedDaemon implements Daemon {
  readonly pid: number;
  readonly process: ChildProcess;
  private stderrTail = '';
  private readonly exited: Promise<ExitStatus>;
  private stopped: Promise<ExitStatus> | undefined;

  constructor(
    readonly label: string,
    readonly dir: string,
    child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error(`${label} has no pid`);
    this.pid = child.pid;
    this.process = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const stderr = child.stderr as Socket;
    stderr.setEncoding('utf8');
    stderr.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_BYTES);
    });
    stderr.unref();
    child.unref();
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  stderrText(): string {
    return this.stderrTail;
  }

  /** Resolves with the exit status, or with `undefined` if it did not come within `timeoutMs`. */
  async exitWithin(timeoutMs: number): Promise<ExitStatus | undefined> {
    // While someone waits for the exit, the child must keep the event loop alive.
    this.process.ref();
    const deadline = new AbortController();
    try {
      return await Promise.race([
        this.exited,
        delay(timeoutMs, undefined, { signal: deadline.signal }).then(
          () => undefined,
          () => undefined,
        ),
      ]);
    } finally {
      deadline.abort();
      this.process.unref();
    }
  }

  async waitForExit(timeoutMs = STOP_GRACE_MS): Promise<ExitStatus> {
    const status = await this.exitWithin(timeoutMs);
    if (status === undefined) throw new Error(`${this.label} (pid ${this.pid}) did not exit within ${timeoutMs} ms`);
    return status;
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    this.stopped ??= this.stopAndRemoveDir(signal);
    return this.stopped;
  }

  kill(): Promise<ExitStatus> {
    if (this.running) this.process.kill('SIGKILL');
    return this.stop('SIGKILL');
  }

  private async stopAndRemoveDir(signal: NodeJS.Signals): Promise<ExitStatus> {
    if (this.running) this.process.kill(signal);
    let status = await this.exitWithin(signal === 'SIGKILL' ? KILL_GRACE_MS : STOP_GRACE_MS);
    if (status === undefined) {
      this.process.kill('SIGKILL');
      status = await this.waitForExit(KILL_GRACE_MS);
    }
    liveDaemons.delete(this);
    await removeTempDir(this.dir);
    return status;
  }

  /**
   * Resolves once the daemon has written `text` on stderr (for a daemon that
   * says when it is ready, as nats-server's "Server is ready"); rejects if
   * it exits first or `deadline` (epoch ms) passes.
   */
  waitForStderr(text: string, deadline: number): Promise<void> {
    if (this.stderrTail.includes(text)) return Promise.resolve();
    if (!this.running) return Promise.reject(new Error(`${this.label} exited before writing ${JSON.stringify(text)}; stderr:\n${this.stderrTail}`));
    const stderr = this.process.stderr!;
    return new Promise((resolve, reject) => {
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        stderr.off('data', onData);
        if (error === undefined) resolve();
        else reject(error);
      };
      // Registered after the constructor's listener, so the tail already holds this chunk.
      const onData = (): void => {
        if (this.stderrTail.includes(text)) finish();
      };
      const timer = setTimeout(
        () => finish(new Error(`${this.label} did not write ${JSON.stringify(text)} in time; stderr:\n${this.stderrTail}`)),
        Math.max(0, deadline - Date.now()),
      );
      stderr.on('data', onData);
      void this.exited.then((status) =>
        finish(new Error(`${this.label} exited (${describeExit(status)}) before writing ${JSON.stringify(text)}; stderr:\n${this.stderrTail}`)),
      );
    });
  }

  /**
   * Resolves once `socketPath` exists and accepts a connection and, with
   * `firstBytes`, once the daemon has sent something on it (QMP greeting,
   * HMP banner): then the daemon's main loop is running and a test's own
   * short greeting timeout measures the code under test, not QEMU's start.
   * The probe connection is closed again; QEMU greets the next client anew.
   * Rejects if the daemon exits first or `deadline` (epoch ms) passes.
   */
  async waitUntilServing(socketPath: string, firstBytes: boolean, deadline: number): Promise<void> {
    for (;;) {
      if (!this.running) {
        const status = await this.exited;
        throw new Error(
          `${this.label} exited (${describeExit(status)}) before serving ${socketPath}; stderr:\n${this.stderrTail}`,
        );
      }
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) {
        throw new Error(`${this.label} did not serve ${socketPath} in time; stderr:\n${this.stderrTail}`);
      }
      if (existsSync(socketPath) && (await probeSocket(socketPath, firstBytes, remainingMs))) return;
      await delay(READY_POLL_INTERVAL_MS);
    }
  }
}

/** `code 0` or `signal SIGTERM`, for messages. */
export function describeExit(status: ExitStatus): string {
  return status.signal === null ? `code ${status.code}` : `signal ${status.signal}`;
}

/** One connection attempt; true when it connected (and, with `firstBytes`, data arrived). */
function probeSocket(socketPath: string, firstBytes: boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const finish = (ready: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ready);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
    if (firstBytes) socket.once('data', () => finish(true));
    else socket.once('connect', () => finish(true));
  });
}

/**
 * At process exit, SIGKILL every daemon a test forgot to stop and wait
 * (synchronously: 'exit' handlers cannot await) until it is really gone, so
 * the spec runner's check for leftover processes does not race with it.
 */
function registerExitHook(): void {
  if (exitHookRegistered) return;
  exitHookRegistered = true;
  process.on('exit', () => {
    for (const daemon of liveDaemons) {
      if (!daemon.running) continue;
      process.stderr.write(
        `spec helpers: ${daemon.label} (pid ${daemon.pid}) was still running at exit; killed it (the test should call stop())\n`,
      );
      try {
        process.kill(daemon.pid, 'SIGKILL');
      } catch {
        continue; // it died meanwhile
      }
      const deadline = Date.now() + KILL_GRACE_MS;
      while (isProcessAlive(daemon.pid) && Date.now() < deadline) sleepSync(1);
    }
  });
}

/** True while `pid` exists and is not a zombie (a dead child nobody reaped yet). Linux: reads /proc. */
export function isProcessAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  // Format: "pid (comm) state ...", comm may itself contain ") ".
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X';
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
