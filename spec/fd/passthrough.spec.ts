/**
 * `monitorCommand(mon, cmd, flags, { fds })`, after libvirt's
 * virDomainQemuMonitorCommandWithFiles, against real QEMU: QMP text with
 * the caller's id, and an HMP line on the human-monitor socket.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, silentLogger, UnsupportedError } from '../../lib/index.js';
import { monitorCommand, MonitorCommandFlags } from '../../lib/passthrough/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { closeOwned, fdsOn, fdTarget, openTestFile } from './files.js';

const test = suite<{ qemu: QemuInstance; dir: string }>('monitorCommand with file descriptors, real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu();
  context.dir = createTempDir('fd-passthrough');
});

test.after(async (context) => {
  await context.qemu.stop();
  await removeTempDir(context.dir);
});

test("add-fd as QMP text with the caller's id, then blockdev-add on its set; getfd and closefd", async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'passthrough.img');
  const named = openTestFile(dir, 'passthrough-named.img');
  const monitor = await connect(qemu.qmpPath, { fdPassing: true, logger: silentLogger });
  try {
    const reply = await monitorCommand(monitor, '{"execute":"add-fd","arguments":{"fdset-id":3},"id":"with-files"}', 0, { fds: [file.fd] });
    const match = /^\{"return": \{"fd": (\d+), "fdset-id": 3\}, "id": "with-files"\}$/.exec(reply);
    assert.ok(match, reply);
    assert.is(fdTarget(qemu.pid, Number(match[1])), file.path);
    const without = await monitorCommand(monitor, '{"execute":"getfd","arguments":{"fdname":"x"}}');
    assert.is(without, '{"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}');
    const refused = await monitorCommand(monitor, '{"execute":"query-status"}', 0, { fds: [file.fd] }).then(
      () => new Error('expected a rejection'),
      (error: Error) => error,
    );
    assert.instance(refused, UnsupportedError);
    assert.is(await monitorCommand(monitor, '{"execute":"blockdev-add","arguments":{"driver":"file","node-name":"pt-disk","filename":"/dev/fdset/3"}}'), '{"return": {}}');
    const nodes = JSON.parse(await monitorCommand(monitor, '{"execute":"query-named-block-nodes"}')) as { return: Array<{ 'node-name': string; file: string }> };
    assert.ok(nodes.return.some((node) => node['node-name'] === 'pt-disk' && node.file === '/dev/fdset/3'), JSON.stringify(nodes));
    assert.is(await monitorCommand(monitor, '{"execute":"blockdev-del","arguments":{"node-name":"pt-disk"}}'), '{"return": {}}');
    await monitorCommand(monitor, '{"execute":"remove-fd","arguments":{"fdset-id":3}}');
    assert.is(await monitorCommand(monitor, '{"execute":"getfd","arguments":{"fdname":"pt1"}}', 0, { fds: [named.fd] }), '{"return": {}}');
    assert.is(fdsOn(qemu.pid, named.path), 1, 'getfd: QEMU holds it under its name');
    assert.is(await monitorCommand(monitor, '{"execute":"closefd","arguments":{"fdname":"pt1"}}'), '{"return": {}}');
    assert.is(fdsOn(qemu.pid, named.path), 0);
  } finally {
    await monitor.close();
    closeOwned(file.fd);
    closeOwned(named.fd);
  }
});

test('an HMP getfd line with an fd on the human-monitor socket', async ({ qemu, dir }) => {
  const file = openTestFile(dir, 'passthrough-hmp.img');
  const monitor = await connect(qemu.hmpPath, { fdPassing: true, logger: silentLogger });
  try {
    assert.is(await monitorCommand(monitor, 'getfd pt0', MonitorCommandFlags.HMP, { fds: [file.fd] }), '');
    assert.is(fdsOn(qemu.pid, file.path), 1);
    assert.is(await monitorCommand(monitor, 'closefd pt0', MonitorCommandFlags.HMP), '');
    assert.is(fdsOn(qemu.pid, file.path), 0);
  } finally {
    await monitor.close();
    closeOwned(file.fd);
  }
});

test.run();
