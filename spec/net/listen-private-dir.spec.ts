/**
 * A downstream socket is bound in a private 0700 directory, given its mode,
 * and only then renamed to its final path: seen in the system calls of a
 * process that binds one (strace), so the order is what the kernel saw.
 * Apart from spec/net/listen.spec.ts because it starts strace, which the
 * unit tier does not allow.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';

const listenModule = fileURLToPath(new URL('../../lib/net/listen.js', import.meta.url));

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

test.run();
