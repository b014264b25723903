/**
 * `qmpx serve` as a child process for the specs: its logs are pino JSON
 * lines on stderr, parsed as they come, so a spec waits for a line instead
 * of sleeping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SERVE_MODULE = fileURLToPath(new URL('../../lib/cli/serve.js', import.meta.url));
const BOOTSTRAP = `const { serveCommand } = await import(process.argv[1]); await serveCommand().parseAsync(process.argv.slice(2), { from: 'user' });`;

export interface LogLine {
  msg: string;
  [field: string]: unknown;
}

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(predicate: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
}

/** Runs `qmpx serve ARGS` in a child process (with `env` added to its environment), its stderr read as pino JSON lines. */
export function spawnServe(args: string[], env: Record<string, string> = {}): ServeProcess {
  const child = spawn(process.execPath, ['--input-type=module', '-e', BOOTSTRAP, SERVE_MODULE, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  const logs: LogLine[] = [];
  const waiters = new Set<() => boolean>();
  let partial = '';
  let other = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        other += `${line}\n`; // QEMU's own stderr, or a usage error
      }
    }
    for (const waiter of waiters) if (waiter()) waiters.delete(waiter);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const waiter of waiters) waiter();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    logs,
    exited,
    waitForLog(predicate, what, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => fail('timed out'), timeoutMs);
        function fail(why: string): void {
          clearTimeout(timer);
          reject(new Error(`serve: ${why} waiting for ${what}; logs: ${logs.map((line) => line.msg).join(' | ')}; other: ${other}`));
        }
        const check = (): boolean => {
          const found = logs.find(predicate);
          if (found) {
            clearTimeout(timer);
            resolve(found);
            return true;
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            fail('exited');
            return true;
          }
          return false;
        };
        if (!check()) waiters.add(check);
      });
    },
  };
}

export const message = (text: string) => (line: LogLine) => line.msg === text;

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

