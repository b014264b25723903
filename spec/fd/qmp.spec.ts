/**
 * File descriptors sent with QMP commands, against real QEMU 7.2: each fd
 * is a file the test opened, and QEMU's own fd table (/proc/PID/fd) shows
 * which file reached it and when it let go.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, QmpError, silentLogger, type Monitor } from '../../lib/index.js';
import type { QmpReply } from '../../lib/contract.js';
import type { RequestOutcome } from '../../lib/request.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { closeOwned, fdsOn, fdTarget, isOpen, openTestFile } from './files.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance; dir: string }>('file descriptors with QMP commands, real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu();
  context.dir = createTempDir('fd-qmp');
});

test.after(async (context) => {
  await context.qemu.stop();
  await removeTempDir(context.dir);
});

async function withMonitor<T>(qemu: QemuInstance, body: (monitor: Monitor) => Promise<T>): Promise<T> {
  const monitor = await connect(qemu.qmpPath, { fdPassing: true, logger: silentLogger, commandTimeoutMs: 10_000 });
  try {
    assert.ok(monitor.fdPassing, 'the monitor says it can pass fds');
    return await body(monitor);
  } finally {
    await monitor.close();
  }
}

interface AddFdReturn {
  fd: number;
  'fdset-id': number;
}

const NO_FD = 'No file descriptor supplied via SCM_RIGHTS';

test('add-fd of a file the test opened, then blockdev-add on /dev/fdset/N: query-named-block-nodes shows it', async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'disk.img', 'x'.repeat(4096));
  try {
    await withMonitor(qemu, async (monitor) => {
      const added = await monitor.execute<AddFdReturn>('add-fd', { 'fdset-id': 7 }, { fds: [file.fd] });
      assert.is(added['fdset-id'], 7);
      assert.is(fdTarget(qemu.pid, added.fd), file.path, "QEMU's fd is the test's file");
      await monitor.execute('blockdev-add', { driver: 'file', 'node-name': 'fd-disk', filename: '/dev/fdset/7' });
      const nodes = await monitor.execute<Array<{ 'node-name': string; file: string; drv: string }>>('query-named-block-nodes');
      const node = nodes.find((entry) => entry['node-name'] === 'fd-disk');
      assert.ok(node, `fd-disk among ${JSON.stringify(nodes.map((entry) => entry['node-name']))}`);
      assert.is(node.file, '/dev/fdset/7');
      assert.is(node.drv, 'file');
      await monitor.execute('blockdev-del', { 'node-name': 'fd-disk' });
      await monitor.execute('remove-fd', { 'fdset-id': 7 });
    });
  } finally {
    closeOwned(file.fd);
  }
});

test('getfd then closefd: QEMU holds the file between them and not after', async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'tap.img');
  try {
    await withMonitor(qemu, async (monitor) => {
      assert.is(fdsOn(qemu.pid, file.path), 0);
      assert.equal(await monitor.execute('getfd', { fdname: 'tap0' }, { fds: [file.fd] }), {});
      assert.is(fdsOn(qemu.pid, file.path), 1, 'QEMU holds it under its name');
      assert.equal(await monitor.execute('closefd', { fdname: 'tap0' }), {});
      assert.is(fdsOn(qemu.pid, file.path), 0, 'closefd let go of it');
      const again = await rejectionOf(monitor.execute('closefd', { fdname: 'tap0' }));
      assert.instance(again, QmpError);
      assert.is((again as QmpError).desc, "File descriptor named 'tap0' not found");
    });
  } finally {
    closeOwned(file.fd);
  }
});

test("getfd without an fd fails with QEMU's text", async ({ qemu }) => {
  await withMonitor(qemu, async (monitor) => {
    const error = await rejectionOf(monitor.execute('getfd', { fdname: 'none' }));
    assert.instance(error, QmpError);
    assert.is((error as QmpError).errorClass, 'GenericError');
    assert.is((error as QmpError).desc, NO_FD);
  });
});

test('pipelined query-status, add-fd with an fd, getfd without: each gets its own reply and only add-fd the fd', async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'pipelined.img');
  try {
    await withMonitor(qemu, async (monitor) => {
      const status = monitor.execute<{ status: string }>('query-status');
      const added = monitor.execute<AddFdReturn>('add-fd', { 'fdset-id': 11 }, { fds: [file.fd] });
      const got = monitor.execute('getfd', { fdname: 'after' });
      const [statusResult, addResult, getResult] = await Promise.allSettled([status, added, got]);
      assert.is(statusResult.status === 'fulfilled' && statusResult.value.status, 'prelaunch');
      assert.ok(addResult.status === 'fulfilled', 'add-fd succeeded');
      assert.is(fdTarget(qemu.pid, addResult.value.fd), file.path);
      assert.ok(getResult.status === 'rejected', 'getfd without an fd failed');
      assert.is((getResult.reason as QmpError).desc, NO_FD);
      assert.is(fdsOn(qemu.pid, file.path), 1, 'one copy, in the fd set');
      await monitor.execute('remove-fd', { 'fdset-id': 11 });
    });
  } finally {
    closeOwned(file.fd);
  }
});

test('a getfd without an fd written just before an add-fd with one does not take it', async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'before.img');
  try {
    await withMonitor(qemu, async (monitor) => {
      const results = await Promise.allSettled([
        monitor.execute('getfd', { fdname: 'before' }),
        monitor.execute<AddFdReturn>('add-fd', { 'fdset-id': 12 }, { fds: [file.fd] }),
      ]);
      assert.ok(results[0].status === 'rejected', `getfd without an fd failed: ${JSON.stringify(results[0])}`);
      assert.is((results[0].reason as QmpError).desc, NO_FD);
      assert.ok(results[1].status === 'fulfilled', `add-fd succeeded: ${String((results[1] as PromiseRejectedResult).reason)}`);
      assert.is(fdTarget(qemu.pid, results[1].value.fd), file.path);
      await monitor.execute('remove-fd', { 'fdset-id': 12 });
    });
  } finally {
    closeOwned(file.fd);
  }
});

test('pipelined add-fd commands, each with its own file: each gets its own', async ({ qemu, dir }) => {
  const files = [0, 1, 2, 3, 4, 5, 6, 7].map((index) => openTestFile(dir, `many-${index}.img`));
  try {
    await withMonitor(qemu, async (monitor) => {
      const added = await Promise.all(files.map((file, index) => monitor.execute<AddFdReturn>('add-fd', { 'fdset-id': 20 + index }, { fds: [file.fd] })));
      added.forEach((reply, index) => {
        assert.is(reply['fdset-id'], 20 + index);
        assert.is(fdTarget(qemu.pid, reply.fd), files[index]!.path, `add-fd ${index} got its own file`);
      });
      for (const reply of added) await monitor.execute('remove-fd', { 'fdset-id': reply['fdset-id'] });
    });
  } finally {
    for (const file of files) closeOwned(file.fd);
  }
});

test("the caller's fds stay open after the command, and closing them leaves QEMU's copy", async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'owned.img');
  await withMonitor(qemu, async (monitor) => {
    const added = await monitor.execute<AddFdReturn>('add-fd', { 'fdset-id': 30 }, { fds: [file.fd] });
    assert.ok(isOpen(file.fd), 'still open in the caller');
    closeOwned(file.fd);
    assert.not.ok(isOpen(file.fd));
    assert.is(fdTarget(qemu.pid, added.fd), file.path, "QEMU's copy is its own");
    await monitor.execute('remove-fd', { 'fdset-id': 30 });
  });
});

test('raw.send, relay.send and relay.sendWithCallback carry fds with their command', async ({ qemu, dir }) => {
  const files = ['raw', 'relay', 'callback'].map((name) => openTestFile(dir, `${name}.img`));
  try {
    await withMonitor(qemu, async (monitor) => {
      const raw = await monitor.raw!.send('add-fd', '{"fdset-id": 40}', { fds: [files[0]!.fd] });
      const relayed = await monitor.relay!.send('add-fd', '{"fdset-id": 41}', { fds: [files[1]!.fd] });
      const called = await new Promise<RequestOutcome<QmpReply>>((resolve) =>
        monitor.relay!.sendWithCallback('add-fd', '{"fdset-id": 42}', { fds: [files[2]!.fd] }, resolve),
      );
      assert.ok(called.ok, 'sendWithCallback settled with a reply');
      [raw, relayed, called.reply].forEach((reply, index) => {
        assert.is(reply.kind, 'return', reply.text);
        const value = (reply.message as { return: AddFdReturn }).return;
        assert.is(value['fdset-id'], 40 + index);
        assert.is(fdTarget(qemu.pid, value.fd), files[index]!.path);
      });
      for (const id of [40, 41, 42]) await monitor.execute('remove-fd', { 'fdset-id': id });
    });
  } finally {
    for (const file of files) closeOwned(file.fd);
  }
});

test('a command with fds aborted while it waits its turn is never written, and its fds never reach QEMU', async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'aborted.img');
  const monitor = await connect(qemu.qmpPath, { fdPassing: true, logger: silentLogger, commandTimeoutMs: 10_000, maxInFlight: 1 });
  try {
    const first = monitor.execute('query-status');
    const controller = new AbortController();
    const queued = rejectionOf(monitor.execute('getfd', { fdname: 'aborted' }, { fds: [file.fd], signal: controller.signal }));
    controller.abort();
    assert.is((await queued as { code?: string }).code, 'ABORTED');
    await first;
    const next = await rejectionOf(monitor.execute('getfd', { fdname: 'next' }));
    assert.is((next as QmpError).desc, NO_FD, 'no fd was left in QEMU for the next getfd');
    assert.is(fdsOn(qemu.pid, file.path), 0, 'QEMU never got the file');
    assert.ok(isOpen(file.fd), 'still the caller\'s');
  } finally {
    await monitor.close();
    closeOwned(file.fd);
  }
});

test.run();
