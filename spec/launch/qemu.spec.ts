/**
 * launchQemu against the real QEMU binary: the argv that reaches QEMU
 * (read back from /proc/PID/cmdline), readiness, start failures, and that
 * QEMU does not outlive the process that launched it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from '../../lib/index.js';
import { GUESTLESS_ARGS, LaunchError, launchQemu, qemuArguments, type LaunchedQemu } from '../../lib/launch/qemu.js';
import { isProcessAlive } from '../helpers/daemon.js';
import { rawQmp } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';

const DEADLINE_MS = 10_000;

function cmdlineOf(pid: number): string[] {
  const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  return raw.split('\0').slice(0, -1);
}

async function waitUntil(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await delay(10);
  }
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = createTempDir('launch');
  try {
    await body(dir);
  } finally {
    await removeTempDir(dir);
  }
}

test('with no extra arguments it starts the guest-less QEMU and both monitors greet', () =>
  withDir(async (dir) => {
    const qmpPath = socketPathIn(dir, 'qmp.sock');
    const hmpPath = socketPathIn(dir, 'hmp.sock');
    const qemu = await launchQemu({ qmpPath, hmpPath });
    try {
      assert.equal(qemu.argv.slice(1), [
        '-qmp',
        `unix:${qmpPath},server=on,wait=off`,
        '-monitor',
        `unix:${hmpPath},server=on,wait=off`,
        ...GUESTLESS_ARGS,
      ]);
      assert.equal(cmdlineOf(qemu.pid), [...qemu.argv]);
      const qmp = await rawQmp(qmpPath);
      const [greeting] = await qmp.waitForLines(1);
      assert.match(greeting!, /^\{"QMP": /);
      await qmp.close();
      const hmp = await rawQmp(hmpPath);
      await hmp.waitForText('(qemu) ');
      await hmp.close();
    } finally {
      await qemu.stop();
    }
    assert.equal(await qemu.exited, { code: 0, signal: null });
  }),
);

test('extra arguments with spaces, commas, quotes and = reach QEMU as the same argv elements', () =>
  withDir(async (dir) => {
    const qmpPath = socketPathIn(dir, 'qmp.sock');
    const name = `guest=lab one,,two "three" 'four'=5`;
    const extraArgs = [...GUESTLESS_ARGS, '-name', name];
    const qemu = await launchQemu({ qmpPath, extraArgs });
    try {
      const cmdline = cmdlineOf(qemu.pid);
      assert.equal(cmdline.slice(-extraArgs.length), extraArgs);
      assert.equal(cmdline, [...qemu.argv]);
      // QEMU itself un-doubles the comma: proof that the element arrived whole and was parsed by QEMU alone.
      const monitor = await connect(qmpPath);
      assert.equal(await monitor.execute('query-name'), { name: `lab one,two "three" 'four'=5` });
      await monitor.close();
    } finally {
      await qemu.stop();
    }
  }),
);

test('a comma in a socket path is doubled in qmpx\'s own option, caller arguments are not touched', () => {
  const args = qemuArguments({ qmpPath: '/tmp/a,b.sock', extraArgs: ['-name', 'x,,y,z'] });
  assert.equal(args, ['-qmp', 'unix:/tmp/a,,b.sock,server=on,wait=off', '-name', 'x,,y,z']);
});

test('env adds variables to QEMU\'s environment', () =>
  withDir(async (dir) => {
    const qemu = await launchQemu({ qmpPath: socketPathIn(dir, 'qmp.sock'), env: { QMPX_LAUNCH_TEST: 'a b=c' } });
    try {
      const environ = readFileSync(`/proc/${qemu.pid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes('QMPX_LAUNCH_TEST=a b=c'), 'variable present');
      assert.ok(environ.some((entry) => entry.startsWith('PATH=')), 'inherited environment kept');
    } finally {
      await qemu.stop();
    }
  }),
);

test('QEMU exiting during start rejects with LaunchError carrying its stderr', () =>
  withDir(async (dir) => {
    try {
      await launchQemu({ qmpPath: socketPathIn(dir, 'qmp.sock'), extraArgs: ['-machine', 'no-such-machine'] });
      assert.unreachable('should have rejected');
    } catch (error) {
      assert.instance(error, LaunchError);
      const launchError = error as LaunchError;
      assert.match(launchError.message, /QEMU exited with code 1 before serving/);
      assert.match(launchError.stderr, /unsupported machine type/);
      assert.is(launchError.code, 'LAUNCH_FAILED');
    }
  }),
);

test('a missing binary rejects with LaunchError naming it', () =>
  withDir(async (dir) => {
    try {
      await launchQemu({ qmpPath: socketPathIn(dir, 'qmp.sock'), binary: 'qemu-system-nonexistent' });
      assert.unreachable('should have rejected');
    } catch (error) {
      assert.instance(error, LaunchError);
      assert.match((error as Error).message, /qemu-system-nonexistent: not found/);
    }
  }),
);

test('a socket path someone already serves is refused before QEMU starts', () =>
  withDir(async (dir) => {
    const qmpPath = socketPathIn(dir, 'busy.sock');
    const server = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(qmpPath, resolve));
    try {
      await launchQemu({ qmpPath });
      assert.unreachable('should have rejected');
    } catch (error) {
      assert.instance(error, LaunchError);
      assert.match((error as Error).message, /already served by another process/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }),
);

test('QEMU does not outlive a launcher that is SIGKILLed', () =>
  withDir(async (dir) => {
    const moduleUrl = new URL('../../lib/launch/qemu.js', import.meta.url).href;
    const script = `import { launchQemu } from ${JSON.stringify(moduleUrl)};
      const qemu = await launchQemu({ qmpPath: ${JSON.stringify(join(dir, 'qmp.sock'))} });
      process.stdout.write(qemu.pid + '\\n');
      setInterval(() => {}, 1000);`;
    const launcher = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    launcher.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    let qemuPid = 0;
    try {
      await waitUntil('the launcher prints the QEMU pid', () => /^\d+\n/.test(output));
      qemuPid = Number(output.trim());
      assert.ok(isProcessAlive(qemuPid), 'QEMU runs');
      launcher.kill('SIGKILL');
      await waitUntil('QEMU is gone', () => !isProcessAlive(qemuPid));
    } finally {
      launcher.kill('SIGKILL');
      if (qemuPid && isProcessAlive(qemuPid)) process.kill(qemuPid, 'SIGKILL');
    }
  }),
);

test('stop() ends QEMU with SIGTERM (a clean exit 0) and is idempotent', () =>
  withDir(async (dir) => {
    const qemu: LaunchedQemu = await launchQemu({ qmpPath: socketPathIn(dir, 'qmp.sock') });
    await Promise.all([qemu.stop(), qemu.stop()]);
    assert.equal(await qemu.exited, { code: 0, signal: null });
    await qemu.stop();
    assert.not.ok(isProcessAlive(qemu.pid));
  }),
);

test.run();
