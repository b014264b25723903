/**
 * Downstream sockets: created with their mode already set (no moment with
 * the umask's mode at the final path), stale files replaced, live sockets
 * and non-sockets refused, removed on close only while still ours.
 */
import { spawn } from 'node:child_process';
import { lstat, readdir, rename, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listenPrivately } from '../../lib/net/listen.js';
import { silentLogger } from '../../lib/log.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger } from '../proxy/harness.js';

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
