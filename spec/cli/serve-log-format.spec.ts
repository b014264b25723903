/**
 * serve's log format: readable lines (pino-pretty) on a terminal, JSON
 * lines otherwise, and --log-format to choose either way.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { CLI_PATH, startQmpx } from './cli-process.js';

const PRETTY_SERVING = /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: serving \{.*"upstream":/m;

/** The text without its colours (a terminal gets them). */
function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[\d+m/g, '').replaceAll('\r', '');
}

async function firstLogs(args: string[]): Promise<string> {
  const dir = createTempDir('log-format');
  const serve = startQmpx(['serve', '--upstream', join(dir, 'qemu.sock'), '--qmp', join(dir, 'vm.qmp'), ...args]);
  try {
    return await serve.waitForStderr(/serving/);
  } finally {
    serve.kill('SIGTERM');
    await serve.finish();
    await removeTempDir(dir);
  }
}

test('--log-format pretty: readable lines, one per record, even into a pipe', async () => {
  const logs = await firstLogs(['--log-format', 'pretty']);
  assert.match(logs, PRETTY_SERVING);
  assert.not.match(logs, /^\{"level"/m);
});

test('into a pipe, by default and with --log-format json: JSON lines', async () => {
  for (const args of [[], ['--log-format', 'json']]) {
    const logs = await firstLogs(args);
    const serving = logs
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .find((line) => line.msg === 'serving');
    assert.is(serving?.level, 30, args.join(' '));
  }
});

test('on a terminal, by default: readable lines', async () => {
  const dir = createTempDir('log-format');
  // The shell prints its pid and becomes serve, so serve itself can be ended: SIGHUP from the closing terminal no longer ends it.
  const command = `sh -c 'echo SERVE_PID=$$; exec ${[process.execPath, CLI_PATH, 'serve', '--upstream', join(dir, 'qemu.sock'), '--qmp', join(dir, 'vm.qmp')].join(' ')}'`;
  // script(1) runs the command with a pseudo-terminal as its stdin, stdout and stderr.
  const terminal = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "serving" line on the terminal: ${JSON.stringify(output)}`)), 15_000);
      terminal.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (/serving.*\r?\n/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.match(plain(output), PRETTY_SERVING);
    assert.ok(output.includes('\x1b['), 'coloured on a terminal');
  } finally {
    const servePid = Number(/SERVE_PID=(\d+)/.exec(output)?.[1]);
    if (servePid > 0) await endProcess(servePid);
    terminal.kill('SIGTERM');
    terminal.stdin.end();
    await removeTempDir(dir);
  }
});

/** SIGTERM to `pid`, then waits (20 s at most) until it is gone. */
async function endProcess(pid: number): Promise<void> {
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (alive()) {
    if (Date.now() > deadline) throw new Error(`serve (pid ${pid}) did not end after SIGTERM`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test.run();
