/**
 * `qmpx exec --pass-fds N,M` as a child process against real QEMU: the
 * numbers name fds open in the qmpx process, here given to it as extra stdio
 * entries (what `3</tmp/disk.img` does in a shell).
 */
import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, silentLogger } from '../../lib/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { closeOwned, fdsOn, fdTarget, openTestFile } from '../fd/files.js';
import { CLI_PATH, type CliResult } from './cli-process.js';

const DEADLINE_MS = 15_000;

/** Runs `qmpx ARGS` with `extraFds` as its fds 3, 4, ...; kills it past the deadline. */
function runWithFds(args: readonly string[], extraFds: readonly number[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe', ...extraFds], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`qmpx ${args.join(' ')} did not exit within ${DEADLINE_MS} ms: ${stdout} ${stderr}`));
    }, DEADLINE_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

let qemu: QemuInstance;
let dir: string;

test.before(async () => {
  qemu = await startQemu();
  dir = createTempDir('exec-fds');
});

test.after(async () => {
  await qemu?.stop();
  await removeTempDir(dir);
});

test('--pass-fds 3 add-fd: QEMU adds the file the shell opened as fd 3, and blockdev-add opens it from the set', async () => {
  const file = openTestFile(dir, 'cli-disk.img');
  try {
    const result = await runWithFds(['exec', qemu.qmpPath, '--pass-fds', '3', 'add-fd', 'fdset-id=5'], [file.fd]);
    assert.is(result.code, 0, result.stderr);
    const match = /^\{"return":\{"fd":(\d+),"fdset-id":5\}\}\n$/.exec(result.stdout);
    assert.ok(match, result.stdout);
    assert.is(fdTarget(qemu.pid, Number(match[1])), file.path);
    const added = await runWithFds(['exec', qemu.qmpPath, 'blockdev-add', 'driver=file', 'node-name=cli-disk', 'filename=/dev/fdset/5'], []);
    assert.is(added.stdout, '{"return":{}}\n', added.stderr);
    const nodes = await runWithFds(['exec', qemu.qmpPath, 'query-named-block-nodes', '--return-value'], []);
    const parsed = JSON.parse(nodes.stdout) as Array<{ 'node-name': string; file: string }>;
    assert.ok(parsed.some((node) => node['node-name'] === 'cli-disk' && node.file === '/dev/fdset/5'), nodes.stdout);
    const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
    await monitor.execute('blockdev-del', { 'node-name': 'cli-disk' });
    await monitor.execute('remove-fd', { 'fdset-id': 5 });
    await monitor.close();
  } finally {
    closeOwned(file.fd);
  }
});

test('--pass-fds 3 getfd, then closefd: QEMU holds the file in between', async () => {
  const file = openTestFile(dir, 'cli-tap.img');
  try {
    const got = await runWithFds(['exec', qemu.qmpPath, '--pass-fds', '3', 'getfd', 'fdname=cli0'], [file.fd]);
    assert.is(got.stdout, '{"return":{}}\n', got.stderr);
    assert.is(fdsOn(qemu.pid, file.path), 1);
    const closed = await runWithFds(['exec', qemu.qmpPath, 'closefd', 'fdname=cli0'], []);
    assert.is(closed.stdout, '{"return":{}}\n', closed.stderr);
    assert.is(fdsOn(qemu.pid, file.path), 0);
  } finally {
    closeOwned(file.fd);
  }
});

test('--hmp --pass-fds 3 getfd on the human-monitor socket', async () => {
  const file = openTestFile(dir, 'cli-hmp.img');
  try {
    const got = await runWithFds(['exec', qemu.hmpPath, '--hmp', '--pass-fds', '3', 'getfd', 'hmp0'], [file.fd]);
    assert.is(got.code, 0, got.stderr);
    assert.is(got.stdout, '');
    assert.is(fdsOn(qemu.pid, file.path), 1);
    const closed = await runWithFds(['exec', qemu.hmpPath, '--hmp', 'closefd', 'hmp0'], []);
    assert.is(closed.code, 0, closed.stderr);
    assert.is(fdsOn(qemu.pid, file.path), 0);
  } finally {
    closeOwned(file.fd);
  }
});

test('a number that is not open in qmpx is refused before connecting: exit 1, nothing sent', async () => {
  const file = openTestFile(dir, 'three.img');
  const result = await runWithFds(['exec', qemu.qmpPath, '--pass-fds', '3,200', 'getfd', 'fdname=missing'], [file.fd]);
  closeOwned(file.fd);
  assert.is(fdsOn(qemu.pid, file.path), 0);
  assert.is(result.code, 1);
  assert.is(result.stdout, '');
  assert.is(
    result.stderr,
    'qmpx exec: error: --pass-fds: file descriptor 200 is not open in qmpx; open it in the shell that runs qmpx, e.g. 200</path/to/file\n',
  );
});

test("a number the shell did not open is refused, even where qmpx's own event loop holds one", async () => {
  const result = await runWithFds(['exec', qemu.qmpPath, '--pass-fds', '3', 'getfd', 'fdname=own'], []);
  assert.is(result.code, 1);
  assert.is(result.stdout, '');
  assert.match(result.stderr, /^qmpx exec: error: --pass-fds: file descriptor 3 (is not open in qmpx|was not opened by the shell: it is one of qmpx's own \(.+\)); /);
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    await monitor.execute('getfd', { fdname: 'probe' }).then(
      () => assert.unreachable('a stray fd reached QEMU'),
      (error: { desc?: string }) => assert.is(error.desc, 'No file descriptor supplied via SCM_RIGHTS'),
    );
  } finally {
    await monitor.close();
  }
});

test('--pass-fds refusals: a TCP monitor, --agent, words that are not numbers', async () => {
  const tcp = await runWithFds(['exec', 'tcp:127.0.0.1:4444', '--pass-fds', '1', 'getfd', 'fdname=x'], []);
  assert.is(tcp.code, 1);
  assert.is(tcp.stderr, 'qmpx exec: error: --pass-fds: file descriptors travel only over a unix socket, not tcp:127.0.0.1:4444\n');
  const agent = await runWithFds(['exec', qemu.qmpPath, '--agent', '--pass-fds', '1', 'guest-ping'], []);
  assert.is(agent.code, 1);
  assert.match(agent.stderr, /--pass-fds cannot be combined with --agent/);
  const words = await runWithFds(['exec', qemu.qmpPath, '--pass-fds', '3,x', 'getfd', 'fdname=x'], []);
  assert.is(words.code, 1);
  assert.match(words.stderr, /expected file descriptor numbers separated by commas, like 3,4; got "3,x"/);
});

test.run();
