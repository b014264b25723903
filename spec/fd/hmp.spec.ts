/**
 * `hmp('getfd NAME', { fds })` on QEMU's human-monitor socket, which takes
 * the fds that arrive with a line; through QMP's human-monitor-command QEMU
 * would not, so there it is refused (refusals.spec.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, silentLogger, UnsupportedError, type Monitor } from '../../lib/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { closeOwned, fdsOn, isOpen, openTestFile } from './files.js';

const test = suite<{ qemu: QemuInstance; dir: string }>('file descriptors on the human-monitor socket, real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu();
  context.dir = createTempDir('fd-hmp');
});

test.after(async (context) => {
  await context.qemu.stop();
  await removeTempDir(context.dir);
});

async function withHmp<T>(qemu: QemuInstance, body: (monitor: Monitor) => Promise<T>): Promise<T> {
  const monitor = await connect(qemu.hmpPath, { fdPassing: true, logger: silentLogger, commandTimeoutMs: 10_000 });
  try {
    assert.is(monitor.protocol, 'hmp');
    assert.ok(monitor.fdPassing);
    return await body(monitor);
  } finally {
    await monitor.close();
  }
}

test('getfd NAME with an fd, then closefd NAME: QEMU holds the file in between', async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'hmp.img');
  try {
    await withHmp(qemu, async (monitor) => {
      assert.is(await monitor.hmp('getfd hmp0', { fds: [file.fd] }), '');
      assert.is(fdsOn(qemu.pid, file.path), 1);
      assert.is(await monitor.hmp('closefd hmp0'), '');
      assert.is(fdsOn(qemu.pid, file.path), 0);
      assert.ok(isOpen(file.fd), "still the caller's");
    });
  } finally {
    closeOwned(file.fd);
  }
});

test("getfd without an fd prints QEMU's error; lines queued around one with an fd run in order", async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'hmp-order.img');
  try {
    await withHmp(qemu, async (monitor) => {
      const outputs = await Promise.all([
        monitor.hmp('info status'),
        monitor.hmp('getfd ordered', { fds: [file.fd] }),
        monitor.hmp('getfd without'),
      ]);
      assert.equal(outputs, ['VM status: paused (prelaunch)\n', '', 'Error: No file descriptor supplied via SCM_RIGHTS\n']);
      assert.is(fdsOn(qemu.pid, file.path), 1);
      assert.is(await monitor.hmp('closefd ordered'), '');
    });
  } finally {
    closeOwned(file.fd);
  }
});

test('a line that takes no fds is refused with them, before anything is typed', async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'hmp-refused.img');
  try {
    await withHmp(qemu, async (monitor) => {
      const error = await monitor.hmp('info status', { fds: [file.fd] }).then(
        () => new Error('expected a rejection'),
        (rejection: Error) => rejection,
      );
      assert.instance(error, UnsupportedError);
      assert.match(error.message, /^info status: takes no file descriptors; on the human monitor only a getfd line takes them/);
      assert.is(await monitor.hmp('getfd probe'), 'Error: No file descriptor supplied via SCM_RIGHTS\n', 'no stray fd in QEMU');
    });
  } finally {
    closeOwned(file.fd);
  }
});

test.run();
