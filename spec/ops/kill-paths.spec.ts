/**
 * The kill path spec/proxy/signals.spec.ts does not take: the upstream
 * lost (its QEMU killed) while serve runs with clients on every socket
 * kind, then SIGTERM. Nothing is left: no socket file, no private bind
 * directory, no temporary directory. (SIGTERM, SIGINT, SIGHUP then SIGTERM
 * and the launched QEMU's exit are signals.spec.ts's.)
 */
import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawQmp, startQemu, type RawClient } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { message, spawnServe } from '../proxy/serve-process.js';

test('upstream loss, then SIGTERM: no socket file and no temporary directory left', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('kill-paths');
  const tmp = createTempDir('kill-paths-tmp');
  const sockets = { qmp: socketPathIn(dir, 'vm.qmp'), hmp: socketPathIn(dir, 'vm.hmp'), ro: socketPathIn(dir, 'vm.ro'), libvirt: socketPathIn(dir, 'vm.libvirt') };
  const serve = spawnServe(['--upstream', qemu.qmpPath, '--qmp', sockets.qmp, '--hmp', sockets.hmp, '--read-only', sockets.ro, '--libvirt', sockets.libvirt], { TMPDIR: tmp });
  const clients: RawClient[] = [];
  try {
    await serve.waitForLog(message('upstream monitor connected'), 'the upstream');
    assert.equal(readdirSync(dir).sort(), ['vm.hmp', 'vm.libvirt', 'vm.qmp', 'vm.qmp.control', 'vm.ro']);
    for (const path of [sockets.qmp, sockets.ro]) {
      const client = await rawQmp(path);
      clients.push(client);
      await client.waitForLines(1);
    }
    process.kill(qemu.pid, 'SIGKILL');
    await serve.waitForLog(message('upstream monitor connection lost; reconnecting'), 'the upstream lost');
    await Promise.all(clients.map((client) => client.waitForClose()));
    // Clients that come while the upstream is down wait, ungreeted, on every socket kind.
    const waiting = await rawQmp(sockets.hmp);
    clients.push(waiting);
    await serve.waitForLog((line) => line.msg === `client connected on hmp socket ${sockets.hmp} (pid ${process.pid}, uid ${process.getuid!()})`, 'the waiting client');
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, { code: 0, signal: null });
    await waiting.waitForClose();
    assert.equal(readdirSync(dir), [], 'sockets and private bind directories removed');
    assert.equal(readdirSync(tmp), [], 'no temporary directory left');
  } finally {
    serve.child.kill('SIGKILL');
    await Promise.all(clients.map((client) => client.close(1000)));
    await qemu.stop();
    await removeTempDir(dir);
    await removeTempDir(tmp);
  }
});

test.run();
