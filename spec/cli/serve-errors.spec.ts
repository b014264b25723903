/**
 * What `qmpx serve` says when it cannot start, in words that name the
 * option (or the config key) and the path: a socket's directory missing, a
 * directory or a regular file where a socket should go, a QEMU binary that
 * is absent or not executable, a misspelt config key. A world-writable
 * --socket-mode starts, with a warning.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { runQmpx, startQmpx } from './cli-process.js';

/** The last line serve printed before exiting 1. */
async function refusal(args: string[]): Promise<string> {
  const result = await runQmpx(['serve', ...args]);
  assert.is(result.code, 1, result.stderr);
  return result.stderr.trim().split('\n').at(-1)!;
}

test("a socket's directory that does not exist: the option and the directory are named", async () => {
  const dir = createTempDir('serve-errors');
  try {
    assert.is(
      await refusal(['--upstream', join(dir, 'qemu.sock'), '--qmp', join(dir, 'missing', 'vm.qmp')]),
      `qmpx serve: --qmp: directory ${join(dir, 'missing')} does not exist (create it first)`,
    );
    assert.is(
      await refusal(['--upstream', join(dir, 'qemu.sock'), '--qmp', join(dir, 'vm.qmp'), '--read-only', join(dir, 'gone', 'vm.ro')]),
      `qmpx serve: --read-only: directory ${join(dir, 'gone')} does not exist (create it first)`,
    );
  } finally {
    await removeTempDir(dir);
  }
});

test('a directory or a regular file where the socket should go', async () => {
  const dir = createTempDir('serve-errors');
  try {
    const file = join(dir, 'notes.txt');
    await writeFile(file, 'kept\n');
    assert.is(
      await refusal(['--upstream', join(dir, 'qemu.sock'), '--qmp', dir]),
      `qmpx serve: --qmp: ${dir} is a directory; give the socket's own path inside it, e.g. ${join(dir, 'vm.sock')}`,
    );
    assert.is(
      await refusal(['--upstream', join(dir, 'qemu.sock'), '--qmp', join(dir, 'vm.qmp'), '--hmp', file]),
      `qmpx serve: --hmp: ${file} is a regular file, not a socket; refusing to replace it`,
    );
  } finally {
    await removeTempDir(dir);
  }
});

test('in a config file the key is named by its place', async () => {
  const dir = createTempDir('serve-errors');
  try {
    const config = join(dir, 'serve.json');
    await writeFile(config, JSON.stringify({ monitors: [{ upstream: join(dir, 'q.sock'), qmp: join(dir, 'a.qmp') }, { upstream: join(dir, 'r.sock'), hmp: join(dir, 'x', 'b.hmp') }] }));
    assert.is(await refusal(['--config', config]), `qmpx serve: /monitors/1/hmp: directory ${join(dir, 'x')} does not exist (create it first)`);
    await writeFile(config, JSON.stringify({ monitors: [{ upstrem: '/x', qmp: join(dir, 'a.qmp') }] }));
    assert.is(await refusal(['--config', config]), `qmpx serve: ${config}: invalid config: /monitors/0: unknown key "upstrem" (did you mean "upstream"?)`);
  } finally {
    await removeTempDir(dir);
  }
});

test('--qemu-binary absent, not executable, a directory: said so, not "not found in PATH"', async () => {
  const dir = createTempDir('serve-errors');
  try {
    const plain = join(dir, 'qemu-plain');
    await writeFile(plain, '#!/bin/sh\n');
    await chmod(plain, 0o644);
    const qmp = join(dir, 'vm.qmp');
    assert.is(await refusal(['--launch', '--qemu-binary', join(dir, 'absent'), '--qmp', qmp]), `qmpx serve: QEMU binary ${join(dir, 'absent')} does not exist`);
    assert.is(await refusal(['--launch', '--qemu-binary', plain, '--qmp', qmp]), `qmpx serve: QEMU binary ${plain} is not executable (mode 0644)`);
    await mkdir(join(dir, 'bin'));
    assert.is(await refusal(['--launch', '--qemu-binary', join(dir, 'bin'), '--qmp', qmp]), `qmpx serve: QEMU binary ${join(dir, 'bin')} is a directory`);
    assert.is(await refusal(['--launch', '--qemu-binary', 'qemu-system-none-such', '--qmp', qmp]), 'qmpx serve: qemu-system-none-such: not found in PATH (Debian: apt-get install qemu-system-x86)');
  } finally {
    await removeTempDir(dir);
  }
});

test('a world-writable --socket-mode is warned about, and serving starts', async () => {
  const dir = createTempDir('serve-errors');
  const serve = startQmpx(['serve', '--upstream', join(dir, 'qemu.sock'), '--qmp', join(dir, 'vm.qmp'), '--socket-mode', '0666']);
  try {
    const stderr = await serve.waitForStderr(/"msg":"serving"/);
    const warning = stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string; socketMode?: string })
      .find((line) => line.socketMode === '0666');
    assert.ok(warning, stderr);
    assert.is(warning.level, 40);
    assert.match(warning.msg, /^socket mode 0666 \(--socket-mode \/ socketMode\) is world-writable: every local user can connect and control the VM/);
  } finally {
    serve.kill('SIGTERM');
    await serve.finish();
    await removeTempDir(dir);
  }
});

test.run();
