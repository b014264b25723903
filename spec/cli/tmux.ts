/**
 * A real pseudo-terminal for interactive specs: a private tmux server
 * (its own socket, no user config) running one command in one pane.
 *
 *   const term = await openTerminal(['node', CLI_PATH, 'shell', sock]);
 *   await term.waitFor(/\(QEMU\) $/m);
 *   await term.type('query-na'); await term.keys('Tab');
 *   ...
 *   await term.close();
 *
 * Waits poll `capture-pane` until the screen matches, with a deadline, and
 * fail with the screen's text.
 */
import { execFile } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const DEFAULT_DEADLINE_MS = 10_000;
let sessionCounter = 0;

/** A tmux pane running one command. */
export interface Terminal {
  /** The visible screen (and `scrollback` lines above it) as plain text, or with SGR colour codes when `escapes`. */
  screen(options?: { escapes?: boolean; scrollback?: number }): Promise<string>;
  /** Resolves with the screen once it matches `pattern`; rejects with the screen after the deadline. */
  waitFor(pattern: RegExp, deadlineMs?: number, options?: { escapes?: boolean }): Promise<string>;
  /** Types `text` literally. */
  type(text: string): Promise<void>;
  /** Sends tmux key names: 'Enter', 'Tab', 'Up', 'C-d', 'C-c'. */
  keys(...names: string[]): Promise<void>;
  /** The cursor position in the pane, 0-based. */
  cursor(): Promise<{ x: number; y: number }>;
  /** The exit status of the command once it has ended (the pane stays open to read it). */
  waitForExit(deadlineMs?: number): Promise<number>;
  /** Kills the tmux server and everything in it. */
  close(): Promise<void>;
}

/** Starts `argv` in a new pane of a private tmux server, `columns` × `rows`. */
export async function openTerminal(argv: readonly string[], env: Record<string, string> = {}, columns = 160, rows = 48): Promise<Terminal> {
  const server = `qmpx-spec-${process.pid}-${++sessionCounter}`;
  const tmux = async (...args: string[]): Promise<string> => (await run('tmux', ['-L', server, '-f', '/dev/null', ...args])).stdout;
  const envArgs = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  // sh reports the exit status on screen: tmux 3.3 leaves #{pane_dead_status} empty.
  const script = 'env "$@"; printf "\\n[exited %d]\\n" $?';
  await tmux('new-session', '-d', '-s', 'spec', '-x', String(columns), '-y', String(rows), 'sh', '-c', script, 'sh', ...envArgs, ...argv);
  // Keep the pane after the command exits, so its exit status and last output can still be read.
  await tmux('set-option', '-t', 'spec', 'remain-on-exit', 'on');

  const screen = async (options: { escapes?: boolean; scrollback?: number } = {}): Promise<string> =>
    tmux('capture-pane', '-p', '-N', '-t', 'spec', ...(options.escapes ? ['-e'] : []), ...(options.scrollback ? ['-S', String(-options.scrollback)] : []));
  return {
    screen,
    async waitFor(pattern, deadlineMs = DEFAULT_DEADLINE_MS, options = {}) {
      const deadline = Date.now() + deadlineMs;
      for (;;) {
        const text = await screen({ ...options, scrollback: 200 });
        if (pattern.test(text)) return text;
        if (Date.now() > deadline) throw new Error(`terminal did not show ${pattern} within ${deadlineMs} ms; screen:\n${text}`);
        await delay(20);
      }
    },
    async type(text) {
      await tmux('send-keys', '-t', 'spec', '-l', text);
    },
    async keys(...names) {
      await tmux('send-keys', '-t', 'spec', ...names);
    },
    async cursor() {
      const [x, y] = (await tmux('display-message', '-p', '-t', 'spec', '#{cursor_x} #{cursor_y}')).trim().split(' ').map(Number);
      return { x: x!, y: y! };
    },
    async waitForExit(deadlineMs = DEFAULT_DEADLINE_MS) {
      const deadline = Date.now() + deadlineMs;
      for (;;) {
        const text = await screen({ scrollback: 200 });
        const match = /^\[exited (\d+)\]$/m.exec(text);
        if (match) return Number(match[1]);
        if (Date.now() > deadline) throw new Error(`the command did not exit within ${deadlineMs} ms; screen:\n${text}`);
        await delay(20);
      }
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
    },
  };
}
