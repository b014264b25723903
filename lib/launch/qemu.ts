/**
 * Starting a QEMU whose monitor qmpx will talk to: `qmpx launch` and
 * `qmpx serve --launch`.
 *
 * The command line is qmpx's monitor options followed by the caller's
 * arguments, each one argv element, appended verbatim: never split on
 * spaces, never re-quoted, never rewritten. That is the lesson of libvirt's
 * `<qemu:commandline>` design (one `<qemu:arg>` per element, because
 * splitting a free-form string is fragile, and no "alter" of generated
 * options). With no caller arguments the guest-less QEMU of docs/monitor-facts.md §1 runs.
 *
 *   [binary, -qmp unix:QMP,server=on,wait=off, (-monitor unix:HMP,server=on,wait=off),
 *    ...(extraArgs || -machine none -nodefaults -display none -S)]
 *
 * QEMU must not outlive whoever launched it. On Linux the child is started
 * through util-linux `setpriv --pdeathsig TERM`, which asks the kernel to
 * SIGTERM QEMU when this process dies, even by SIGKILL; setpriv then execs
 * QEMU, so the pid and `/proc/PID/cmdline` are QEMU's own. Where setpriv is
 * missing, an exit hook still stops QEMU on any orderly exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { connect as connectSocket } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { QmpxError } from '../errors.js';

/** What to start. */
export interface LaunchOptions {
  /** Where QEMU serves QMP (a UNIX socket path it creates). */
  qmpPath: string;
  /** Where QEMU serves the human monitor, if anywhere. */
  hmpPath?: string;
  /** QEMU arguments, one argv element each, appended verbatim after qmpx's monitor options. */
  extraArgs?: readonly string[];
  /** Variables added to (or replacing those of) this process's environment. */
  env?: Readonly<Record<string, string>>;
  /** A name looked up in PATH, or a path. Default `qemu-system-x86_64`. */
  binary?: string;
}

/** A running QEMU started by `launchQemu`. */
export interface LaunchedQemu {
  readonly pid: number;
  /** The exact argv QEMU was executed with; argv[0] is the binary's resolved path. */
  readonly argv: readonly string[];
  /** Settles once QEMU has exited, with its exit code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Sends `signal` (default SIGTERM), waits up to STOP_GRACE_MS for the exit,
   * then SIGKILLs. Resolves once QEMU is gone; idempotent.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** QEMU did not start serving its monitors: it could not be run, it exited, or the deadline passed. */
export class LaunchError extends QmpxError {
  override readonly code = 'LAUNCH_FAILED';

  constructor(
    message: string,
    /** The argv that was (or would have been) executed. */
    readonly argv: readonly string[],
    /** What QEMU wrote to stderr before it failed (its last 64 KiB). */
    readonly stderr = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The guest-less QEMU of docs/monitor-facts.md §1: no guest, no KVM, paused in prelaunch. */
export const GUESTLESS_ARGS: readonly string[] = ['-machine', 'none', '-nodefaults', '-display', 'none', '-S'];
export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';
/** How long QEMU gets to serve every monitor socket. Machine setup precedes the main loop, hence generous. */
export const LAUNCH_READY_TIMEOUT_MS = 30_000;
/** How long stop() waits after its signal before SIGKILL. */
export const STOP_GRACE_MS = 10_000;
const READY_POLL_INTERVAL_MS = 10;
/** How long one readiness probe waits for its answer before the next attempt. */
const PROBE_TIMEOUT_MS = 5000;
const STDERR_TAIL_BYTES = 64 * 1024;

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * The arguments after the binary, as `launchQemu` would pass them. Socket
 * paths are qmpx's own option values, so a comma in them is doubled as QEMU's
 * option syntax requires; caller arguments are copied untouched.
 */
export function qemuArguments(options: Pick<LaunchOptions, 'qmpPath' | 'hmpPath' | 'extraArgs'>): string[] {
  const args = ['-qmp', `unix:${escapeOptionValue(options.qmpPath)},server=on,wait=off`];
  if (options.hmpPath !== undefined) args.push('-monitor', `unix:${escapeOptionValue(options.hmpPath)},server=on,wait=off`);
  const extra = options.extraArgs ?? [];
  args.push(...(extra.length > 0 ? extra : GUESTLESS_ARGS));
  return args;
}

/**
 * Starts QEMU and resolves once its main loop runs and every monitor socket
 * serves: the QMP socket has answered a probe's `qmp_capabilities` (the
 * greeting alone proves less: QEMU's monitor I/O thread greets while the
 * main thread may still be setting up, signal handlers included, so an
 * early SIGTERM would kill QEMU outright) and the HMP socket has sent its
 * banner. Rejects with LaunchError when the binary is missing, a socket
 * path is already served by someone else, QEMU exits first (the error holds
 * its stderr), or LAUNCH_READY_TIMEOUT_MS passes (QEMU is then stopped).
 *
 * QEMU's stdout is this process's stdout; its stderr is held back until the
 * monitors serve (so a start failure is reported once, in the error) and
 * then forwarded to this process's stderr.
 */
export async function launchQemu(options: LaunchOptions): Promise<LaunchedQemu> {
  const binaryName = options.binary ?? DEFAULT_QEMU_BINARY;
  const args = qemuArguments(options);
  const binary = findExecutable(binaryName);
  const argv = [binary ?? binaryName, ...args];
  if (binary === undefined) throw new LaunchError(missingExecutable(binaryName), argv);
  // A daemonized QEMU leaves the process qmpx started and waits on: it would outlive qmpx, unseen.
  const daemonize = args.find((arg) => arg === '-daemonize' || arg === '--daemonize');
  if (daemonize !== undefined) {
    throw new LaunchError(`${daemonize} is refused: QEMU would detach and outlive qmpx, which stops the QEMU it started when it ends; leave it out (run qmpx itself as a service instead)`, argv);
  }
  const socketPaths = [options.qmpPath, ...(options.hmpPath === undefined ? [] : [options.hmpPath])];
  for (const path of socketPaths) {
    // QEMU would unlink the path and bind its own socket there, silently cutting off whoever serves it now.
    if (await probe(path, 'connect')) throw new LaunchError(`${path} is already served by another process`, argv);
  }

  const setpriv = process.platform === 'linux' ? findExecutable('setpriv') : undefined;
  const [command, commandArgs] = setpriv ? [setpriv, ['--pdeathsig', 'TERM', '--', ...argv]] : [binary, args];
  const child = spawn(command, commandArgs, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const launched = new RunningQemu(child, argv);
  await launched.spawned;
  trackUntilExit(child);
  try {
    await launched.waitUntilServing(socketPaths, Date.now() + LAUNCH_READY_TIMEOUT_MS);
  } catch (error) {
    await launched.stop('SIGKILL');
    throw error;
  }
  launched.forwardStderr();
  return launched;
}

class RunningQemu implements LaunchedQemu {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process exists; rejects with LaunchError if it could not be spawned. */
  readonly spawned: Promise<void>;
  private stderrTail = '';
  private forwarding = false;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly child: ChildProcess,
    readonly argv: readonly string[],
  ) {
    this.spawned = new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => reject(new LaunchError(`cannot start ${argv[0]}: ${error.message}`, argv, '', { cause: error })));
    });
    this.pid = child.pid ?? -1;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      if (this.forwarding) process.stderr.write(text);
      else this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_BYTES);
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** From now on QEMU's stderr goes to ours, starting with what it wrote while starting. */
  forwardStderr(): void {
    this.forwarding = true;
    if (this.stderrTail !== '') process.stderr.write(this.stderrTail);
    this.stderrTail = '';
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.stopping === undefined) {
      this.stopping = this.stopWith(signal);
    } else if (signal === 'SIGKILL' && this.running) {
      this.child.kill('SIGKILL');
    }
    return this.stopping;
  }

  private async stopWith(signal: NodeJS.Signals): Promise<void> {
    if (this.running) this.child.kill(signal);
    const grace = new AbortController();
    const exitedInTime = await Promise.race([
      this.exited.then(() => true),
      delay(STOP_GRACE_MS, false, { signal: grace.signal }).catch(() => false),
    ]);
    grace.abort();
    if (!exitedInTime) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Resolves once the QMP socket answers a command and the HMP socket (if any) greets; see launchQemu. */
  async waitUntilServing(socketPaths: readonly string[], deadline: number): Promise<void> {
    for (const [index, path] of socketPaths.entries()) {
      for (;;) {
        if (!this.running) {
          const { code, signal } = await this.exited;
          // stderr may still be in the pipe when 'exit' fires; 'close' means it is drained.
          if (this.child.stderr && !this.child.stderr.closed) await new Promise((resolve) => this.child.once('close', resolve));
          const how = signal === null ? `with code ${code}` : `on signal ${signal}`;
          const stderr = this.stderrTail.trimEnd();
          throw new LaunchError(`QEMU exited ${how} before serving ${path}${stderr ? `:\n${stderr}` : ''}`, this.argv, this.stderrTail);
        }
        const remainingMs = deadline - Date.now();
        if (remainingMs <= 0) {
          throw new LaunchError(`QEMU did not serve ${path} within ${LAUNCH_READY_TIMEOUT_MS} ms`, this.argv, this.stderrTail);
        }
        if (await probe(path, index === 0 ? 'command' : 'greeting', Math.min(remainingMs, PROBE_TIMEOUT_MS))) break;
        await delay(READY_POLL_INTERVAL_MS);
      }
    }
  }
}

/**
 * One probe connection; true when it reached `level`: `connect`ed,
 * received a `greeting` (QMP greeting, HMP banner), or had a QMP `command`
 * answered (qmp_capabilities, which QEMU's main thread runs). The probe is
 * closed at once: QEMU serves one client per monitor and greets the next
 * one anew (docs/monitor-facts.md §2).
 */
function probe(path: string, level: 'connect' | 'greeting' | 'command', timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectSocket(path);
    let received = '';
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      // A polite end, not a reset: QEMU 7.2 can trip a GLib assertion when a client vanishes mid-exchange.
      if (ok) socket.end();
      else socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
    if (level === 'connect') {
      socket.once('connect', () => finish(true));
      return;
    }
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      if (level === 'greeting') return finish(true);
      const greeted = received.includes('\n');
      received += text;
      if (!greeted && received.includes('\n')) socket.write('{"execute":"qmp_capabilities"}\n');
      if (/\n[^\n]*"return"/.test(received)) finish(true);
    });
  });
}

/** Keeps an orderly exit of this process from leaving QEMU behind (the setpriv guard covers the rest). */
function trackUntilExit(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const leftover of liveChildren) leftover.kill('SIGTERM');
  });
}

/** Resolves a bare name through PATH (a name with a slash is taken as a path); undefined when not executable. */
function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      // A directory passes the X_OK test too.
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not executable here; try the next directory
    }
  }
  return undefined;
}

/** Why `name` (which findExecutable did not find) cannot be run, in words. */
function missingExecutable(name: string): string {
  if (!name.includes('/')) return `${name}: not found in PATH (Debian: apt-get install qemu-system-x86)`;
  try {
    const found = statSync(name);
    if (found.isDirectory()) return `QEMU binary ${name} is a directory`;
    return `QEMU binary ${name} is not executable (mode 0${(found.mode & 0o777).toString(8)})`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `QEMU binary ${name} does not exist` : `QEMU binary ${name}: ${(error as Error).message}`;
  }
}

/** QEMU's option syntax escapes a literal comma in a value by doubling it. */
function escapeOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}
