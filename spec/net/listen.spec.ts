/**
 * Downstream sockets: created with their mode already set (no moment with
 * the umask's mode at the final path), stale files replaced, live sockets
 * and non-sockets refused, removed on close only while still ours.
 */
import { spawn } from 'node:child_process';
import { lstat, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listenPrivately } from '../../lib/net/listen.js';
import { silentLogger } from '../../lib/log.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger } from '../proxy/harness.js';

const listenModule = fileURLToPath(new URL('../../lib/net/listen.js', import.meta.url));

async function modeOf(path: string): Promise<number> {
  return (await lstat(path)).mode & 0o777;
}

function connects(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('the socket has mode 0600 (or the one asked for) and nothing else is left in the directory', async () => {
  const dir = createTempDir('listen');
  for (const mode of [0o600, 0o660]) {
    const path = socketPathIn(dir, `s${mode.toString(8)}.sock`);
    const bound = await listenPrivately(net.createServer(), path, mode, silentLogger);
    assert.is(await modeOf(path), mode);
    assert.ok((await lstat(path)).isSocket());
    assert.ok(await connects(path));
    await bound.close();
    assert.equal(await readdir(dir), []);
  }
  await removeTempDir(dir);
});

test('the socket is bound in a private 0700 directory, never at the final path', async () => {
  const dir = createTempDir('listen');
  const path = socketPathIn(dir, 'private.sock');
  const trace = join(dir, 'trace');
  // The system calls of a process that binds, watched by strace: what the kernel saw, in order.
  const script = `import(${JSON.stringify(listenModule)}).then(async ({ listenPrivately }) => {
    const bound = await listenPrivately(() => undefined, ${JSON.stringify(path)}, 0o600, { info() {}, warn() {}, debug() {}, error() {} });
    await bound.close();
  });`;
  const child = spawn('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=mkdir,mkdirat,bind,rename,renameat,renameat2,chmod,fchmodat', process.execPath, '-e', script], { stdio: 'inherit' });
  assert.is(await new Promise((resolve) => child.once('exit', resolve)), 0);
  const calls = (await readFile(trace, 'utf8')).split('\n').filter((line) => line.includes(dir));
  const bindIndex = calls.findIndex((line) => /\bbind\(/.test(line) && line.includes('sun_path='));
  assert.ok(bindIndex >= 0, calls.join('\n'));
  const bindPath = /sun_path="([^"]+)"/.exec(calls[bindIndex]!)![1]!;
  assert.is.not(bindPath, path);
  const made = calls.slice(0, bindIndex).find((line) => /mkdir/.test(line) && line.includes(dirname(bindPath)));
  assert.ok(made !== undefined && /0700\)/.test(made), `the private directory was made 0700: ${made}`);
  assert.not.ok(calls.slice(0, bindIndex).some((line) => line.includes(`"${path}"`)), 'nothing was at the final path before the bind');
  const modeIndex = calls.findIndex((line) => /chmod/.test(line) && line.includes(`"${bindPath}"`) && /0600\)/.test(line));
  const renameIndex = calls.findIndex((line) => /rename/.test(line) && line.includes(`"${bindPath}"`) && line.includes(`"${path}"`));
  assert.ok(bindIndex < modeIndex && modeIndex < renameIndex, calls.join('\n'));
  await removeTempDir(dir);
});

test('a stale socket is replaced (and logged); a live one is refused', async () => {
  const dir = createTempDir('listen');
  const path = socketPathIn(dir, 'stale.sock');
  // A process that dies without closing leaves its socket file behind.
  const child = spawn(process.execPath, [
    '-e',
    "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
    path,
  ]);
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok((await lstat(path)).isSocket());
  assert.not.ok(await connects(path));
  const logger = new RecordingLogger();
  const bound = await listenPrivately(net.createServer(), path, 0o600, logger);
  await logger.waitFor('replacing stale socket');
  assert.ok(await connects(path));
  try {
    await listenPrivately(net.createServer(), path, 0o600, silentLogger);
    assert.unreachable('a live socket was replaced');
  } catch (error) {
    assert.match((error as Error).message, /in use: another server is listening/);
  }
  assert.ok(await connects(path), 'the live server still owns the path');
  await bound.close();
  await removeTempDir(dir);
});

test('a path that is not a socket is never replaced', async () => {
  const dir = createTempDir('listen');
  const path = socketPathIn(dir, 'file.sock');
  await writeFile(path, 'precious');
  try {
    await listenPrivately(net.createServer(), path, 0o600, silentLogger);
    assert.unreachable('a regular file was replaced');
  } catch (error) {
    assert.match((error as Error).message, /exists and is not a socket/);
  }
  assert.ok((await lstat(path)).isFile());
  await removeTempDir(dir);
});

test('close leaves a socket that another server has put in its place', async () => {
  const dir = createTempDir('listen');
  const path = socketPathIn(dir, 'moved.sock');
  const first = await listenPrivately(net.createServer(), path, 0o600, silentLogger);
  await rename(path, socketPathIn(dir, 'aside.sock'));
  const second = await listenPrivately(net.createServer(), path, 0o600, silentLogger);
  await first.close();
  assert.ok(await connects(path), 'the second server still serves');
  await second.close();
  await removeTempDir(dir);
});

test.run();
