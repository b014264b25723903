/**
 * `qmpx serve` as a process: --launch on a fresh QEMU, SIGTERM/SIGINT with
 * commands in flight (QEMU running, or stopped with SIGSTOP), QEMU's exit
 * ending serve with its status, --restart,
 * --config with several monitors, naming. Logs are pino JSON lines on
 * stderr; the spec waits for them instead of sleeping.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawQmp, startQemu } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { isAlive, message, spawnServe } from './serve-process.js';

const STATUS = '{"status": "prelaunch", "singlestep": false, "running": false}';

async function queryStatus(path: string, id: string): Promise<string> {
  const client = await rawQmp(path);
  await client.waitForLines(1);
  await client.send(`{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":"${id}"}\n`);
  const [, , reply] = await client.waitForLines(3);
  await client.close();
  return reply!;
}

test('--launch: a fresh QEMU served at once; SIGTERM ends serve (0), QEMU and the sockets', async () => {
  const dir = createTempDir('serve');
  const qmpPath = socketPathIn(dir, 'vm.qmp');
  const hmpPath = socketPathIn(dir, 'vm.hmp');
  const serve = spawnServe(['--launch', '--qmp', qmpPath, '--hmp', hmpPath, '--name', 'lab1']);
  try {
    const launched = await serve.waitForLog(message('QEMU launched'), 'QEMU launched');
    await serve.waitForLog((line) => line.msg === 'upstream monitor connected' && line.monitor === 'lab1', 'the upstream');
    assert.is(await queryStatus(qmpPath, 'a'), `{"return": ${STATUS}, "id": "a"}`);
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, { code: 0, signal: null });
    assert.not.ok(isAlive(launched.qemuPid as number), 'QEMU was stopped');
    assert.not.ok(existsSync(qmpPath) || existsSync(hmpPath), 'sockets removed');
    assert.ok(serve.logs.some((line) => line.msg === 'shutting down' && line.reason === 'SIGTERM'));
  } finally {
    serve.child.kill('SIGKILL');
    await removeTempDir(dir);
  }
});

test('SIGINT with commands in flight: what was read is answered, then the client is closed', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('serve');
  const qmpPath = socketPathIn(dir, 'vm.qmp');
  const serve = spawnServe(['--upstream', qemu.qmpPath, '--qmp', qmpPath]);
  try {
    await serve.waitForLog(message('upstream monitor connected'), 'the upstream');
    const client = await rawQmp(qmpPath);
    await client.waitForLines(1);
    let batch = '{"execute":"qmp_capabilities"}\n';
    for (let i = 0; i < 2000; i++) batch += `{"execute":"query-status","id":${i}}\n`;
    await client.send(batch);
    await client.waitForLines(10);
    serve.child.kill('SIGINT');
    await client.waitForClose();
    const replies = client.lines().slice(2);
    assert.ok(replies.length >= 8);
    replies.forEach((line, index) => assert.is(line, `{"return": ${STATUS}, "id": ${index}}`));
    assert.equal(await serve.exited, { code: 0, signal: null });
    assert.ok(isAlive(qemu.pid), 'an upstream QEMU that serve did not start is left running');
  } finally {
    serve.child.kill('SIGKILL');
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('SIGTERM while QEMU is stopped: every command serve has read gets an error reply, never a bare EOF', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('serve');
  const qmpPath = socketPathIn(dir, 'vm.qmp');
  // The watchdog says when serve has sent both commands to the stopped QEMU: bytes waiting in QEMU's
  // socket (what `ss` shows) could as well be serve's own query-name of the new link.
  const serve = spawnServe(['--upstream', qemu.qmpPath, '--qmp', qmpPath, '--watchdog', '0.2']);
  try {
    await serve.waitForLog(message('upstream monitor connected'), 'the upstream');
    const client = await rawQmp(qmpPath);
    await client.waitForLines(1);
    await client.send('{"execute":"qmp_capabilities"}\n');
    await client.waitForLines(2);
    process.kill(qemu.pid, 'SIGSTOP');
    await client.send('{"execute":"query-status","id":1}\n{"execute":"query-name","id":"two"}\n');
    await serve.waitForLog((line) => String(line.msg).includes('not answered query-status') && line.pending === 2, 'both commands sent to the stopped QEMU');
    serve.child.kill('SIGTERM');
    await client.waitForClose(15_000);
    const lost = (id: string): string => `{"id": ${id}, "error": {"class": "GenericError", "desc": "monitor connection lost"}}`;
    assert.equal(client.lines().slice(2), [lost('1'), lost('"two"')]);
    assert.equal(await serve.exited, { code: 0, signal: null });
  } finally {
    serve.child.kill('SIGKILL');
    process.kill(qemu.pid, 'SIGCONT');
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('a launched QEMU that exits ends serve with its status', async () => {
  const dir = createTempDir('serve');
  const qmpPath = socketPathIn(dir, 'vm.qmp');
  const serve = spawnServe(['--launch', '--qmp', qmpPath]);
  try {
    const launched = await serve.waitForLog(message('QEMU launched'), 'QEMU launched');
    await serve.waitForLog(message('upstream monitor connected'), 'the upstream');
    process.kill(launched.qemuPid as number, 'SIGKILL');
    assert.equal(await serve.exited, { code: 137, signal: null });
  } finally {
    serve.child.kill('SIGKILL');
    await removeTempDir(dir);
  }
});

test('--restart: quit starts a new QEMU, new clients are served by it; named by query-name', async () => {
  const dir = createTempDir('serve');
  const qmpPath = socketPathIn(dir, 'vm.qmp');
  const serve = spawnServe(['--launch', '--restart', '--qmp', qmpPath, '--', '-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-name', 'guestname']);
  try {
    const first = await serve.waitForLog(message('QEMU launched'), 'QEMU launched');
    await serve.waitForLog(message('named by query-name'), 'the name from query-name');
    const client = await rawQmp(qmpPath);
    await client.waitForLines(1);
    await client.send('{"execute":"qmp_capabilities"}\n{"execute":"quit","id":"bye"}\n');
    await client.waitForClose();
    assert.ok(client.lines().includes('{"return": {}, "id": "bye"}'));
    const second = await serve.waitForLog((line) => line.msg === 'QEMU launched' && line.qemuPid !== first.qemuPid, 'a second QEMU');
    await serve.waitForLog((line) => line.msg === 'upstream monitor connected' && (line.link as number) === 2, 'the new link');
    assert.is(await queryStatus(qmpPath, 'b'), `{"return": ${STATUS}, "id": "b"}`);
    assert.ok(serve.logs.some((line) => line.monitor === 'guestname'));
    assert.ok(isAlive(second.qemuPid as number));
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, { code: 0, signal: null });
    assert.not.ok(isAlive(second.qemuPid as number));
  } finally {
    serve.child.kill('SIGKILL');
    await removeTempDir(dir);
  }
});

test('--config: several monitors in one process', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('serve');
  const configPath = join(dir, 'serve.json');
  const paths = { a: socketPathIn(dir, 'a.qmp'), b: socketPathIn(dir, 'b.qmp'), bro: socketPathIn(dir, 'b.ro') };
  await writeFile(
    configPath,
    JSON.stringify({
      logLevel: 'info',
      monitors: [
        { name: 'existing', upstream: qemu.qmpPath, qmp: paths.a },
        { name: 'launched', launch: { args: ['-machine', 'none', '-nodefaults', '-display', 'none', '-S'] }, qmp: paths.b, readOnly: paths.bro },
      ],
    }),
  );
  const serve = spawnServe(['--config', configPath]);
  try {
    await serve.waitForLog((line) => line.msg === 'upstream monitor connected' && line.monitor === 'existing', 'the first upstream');
    await serve.waitForLog((line) => line.msg === 'upstream monitor connected' && line.monitor === 'launched', 'the second upstream');
    assert.is(await queryStatus(paths.a, 'a'), `{"return": ${STATUS}, "id": "a"}`);
    assert.is(await queryStatus(paths.b, 'b'), `{"return": ${STATUS}, "id": "b"}`);
    assert.is(await queryStatus(paths.bro, 'c'), `{"return": ${STATUS}, "id": "c"}`);
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, { code: 0, signal: null });
  } finally {
    serve.child.kill('SIGKILL');
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('a live socket in the way: serve refuses to start, status 1', async () => {
  const qemu = await startQemu();
  try {
    const serve = spawnServe(['--upstream', qemu.qmpPath, '--qmp', qemu.hmpPath]);
    assert.equal(await serve.exited, { code: 1, signal: null });
    assert.ok(await queryStatus(qemu.qmpPath, 'x').then((line) => line.endsWith('"id": "x"}')));
  } finally {
    await qemu.stop();
  }
});

test.run();
