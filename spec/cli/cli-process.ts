/**
 * Runs the BUILT `qmpx` CLI (dist/lib/cli/main.js) as a child process, the
 * way a user runs it, for the CLI specs.
 *
 *   const { code, stdout, stderr } = await runQmpx(['exec', qemu.qmpPath, 'query-status']);
 *   const events = startQmpx(['events', path, '--loop']);
 *   await events.waitForStderr(/watching events/);
 *   ...
 *   events.kill('SIGINT'); const result = await events.done;
 *
 * Every wait has a deadline and fails with what the process printed so far.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';

/** dist/lib/cli/main.js, next to this file's compiled location (dist/spec/cli). */
export const CLI_PATH = fileURLToPath(new URL('../../lib/cli/main.js', import.meta.url));
/** The repository root, for fixtures that tsc does not copy into dist. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT_DEADLINE_MS = 15_000;

/** How a finished run ended and what it printed. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running CLI process. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Settles when the process has exited and its output is complete. */
  readonly done: Promise<CliResult>;
  /** Resolves with stdout once it matches; rejects after the deadline or if the process ends first. */
  waitForStdout(pattern: RegExp, deadlineMs?: number): Promise<string>;
  /** Resolves with stderr once it matches; rejects after the deadline or if the process ends first. */
  waitForStderr(pattern: RegExp, deadlineMs?: number): Promise<string>;
  /** Resolves with the result once the process exits; rejects (after SIGKILLing it) past the deadline. */
  finish(deadlineMs?: number): Promise<CliResult>;
  kill(signal?: NodeJS.Signals): void;
  write(text: string): void;
  endInput(): void;
}

/** Options for a CLI run. */
export interface CliOptions {
  env?: Record<string, string>;
  /** Text for stdin; stdin is closed after it (runQmpx only). */
  input?: string;
  cwd?: string;
}

/** Starts `node dist/lib/cli/main.js ...args`. */
export function startQmpx(args: readonly string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  let exited = false;
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      exited = true;
      resolve({ code, signal, stdout, stderr });
    });
  });
  const describe = (): string => `qmpx ${args.join(' ')}\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`;
  const waitFor = async (stream: () => string, name: string, pattern: RegExp, deadlineMs: number): Promise<string> => {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      if (pattern.test(stream())) return stream();
      if (exited) throw new Error(`process ended before its ${name} matched ${pattern}: ${describe()}`);
      if (Date.now() > deadline) throw new Error(`${name} did not match ${pattern} within ${deadlineMs} ms: ${describe()}`);
      await delay(10);
    }
  };
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    done,
    waitForStdout: (pattern, deadlineMs = DEFAULT_DEADLINE_MS) => waitFor(() => stdout, 'stdout', pattern, deadlineMs),
    waitForStderr: (pattern, deadlineMs = DEFAULT_DEADLINE_MS) => waitFor(() => stderr, 'stderr', pattern, deadlineMs),
    async finish(deadlineMs = DEFAULT_DEADLINE_MS) {
      const timer = new AbortController();
      const outcome = await Promise.race([done, delay(deadlineMs, undefined, { signal: timer.signal }).catch(() => undefined)]);
      timer.abort();
      if (outcome === undefined) {
        child.kill('SIGKILL');
        await done;
        throw new Error(`process did not exit within ${deadlineMs} ms: ${describe()}`);
      }
      return outcome;
    },
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
    write: (text) => {
      child.stdin!.write(text);
    },
    endInput: () => {
      child.stdin!.end();
    },
  };
}

/** Runs the CLI to completion (deadline 15 s) and returns its result. */
export async function runQmpx(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const cli = startQmpx(args, options);
  cli.child.stdin!.end(options.input ?? '');
  return cli.finish();
}
