/**
 * Shutting down (what SIGTERM and SIGINT do: ServeHandle.stop) while QEMU
 * cannot answer: a QEMU stopped with SIGSTOP holds the commands it was sent.
 * After the grace period every pending command still gets an error reply
 * (the upstream-loss one; on the HMP socket its text and a prompt), in
 * order, before the connection ends; none is left to a bare EOF.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawQmp } from '../helpers/qemu.js';
import { eventually, serveQemu } from './harness.js';

const LOST = (id: string): string => `{"id": ${id}, "error": {"class": "GenericError", "desc": "monitor connection lost"}}`;

test('stop while QEMU is stopped: each pending command gets an error reply in its place, then the connection ends', async () => {
  const served = await serveQemu({ serve: { shutdownGraceMs: 300 } });
  const qemuPid = served.qemu.pid;
  try {
    const client = await served.negotiatedClient();
    const other = await served.negotiatedClient();
    process.kill(qemuPid, 'SIGSTOP');
    await client.send('{"execute":"query-status","id":1}\n{"execute":"query-name","id":"two"}\n{"execute":"qom-get","arguments":{"path":"/machine","property":"type"},"id":[3]}\n');
    await other.send('{"execute":"query-status","id":{"n":4}}\n');
    await eventually(() => served.proxy.pendingCount === 4, 'four commands pending upstream');
    await served.handle.stop(0, 'SIGTERM');
    await client.waitForClose();
    await other.waitForClose();
    assert.equal(client.lines().slice(2), [LOST('1'), LOST('"two"'), LOST('[3]')]);
    assert.equal(other.lines().slice(2), [LOST('{"n": 4}')]);
    assert.is(served.proxy.pendingCount, 0);
  } finally {
    process.kill(qemuPid, 'SIGCONT');
    await served.stop();
  }
});

test('stop while QEMU is stopped: an HMP line running upstream gets an error and a prompt, then the connection ends', async () => {
  const served = await serveQemu({ hmp: true, serve: { shutdownGraceMs: 300 } });
  const qemuPid = served.qemu.pid;
  try {
    const hmp = await rawQmp(served.hmpPath);
    await hmp.waitForText('(qemu) ');
    process.kill(qemuPid, 'SIGSTOP');
    await hmp.send('info status\ninfo name\n');
    await eventually(() => served.proxy.pendingCount === 2, 'two lines running upstream');
    await served.handle.stop(0, 'SIGTERM');
    await hmp.waitForClose();
    assert.match(hmp.text(), /\(qemu\) Error: monitor connection lost\r\n\(qemu\) Error: monitor connection lost\r\n\(qemu\) $/);
  } finally {
    process.kill(qemuPid, 'SIGCONT');
    await served.stop();
  }
});

test.run();
