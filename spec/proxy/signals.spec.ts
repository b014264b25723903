/**
 * `qmpx serve` and signals: SIGHUP opens the audit file again at its path
 * (logrotate moves the file away, then signals) and serving goes on; every
 * way the process ends (SIGTERM, SIGINT, SIGHUP then SIGTERM, the launched
 * QEMU's exit) leaves no socket file and no temporary directory behind.
 */
import { readdirSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawQmp } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { message, spawnServe, type ServeProcess } from './serve-process.js';

const COMMANDS = 400;

/** The query-status commands audited as answered in the file at `path` (0 if there is none). */
async function commandsIn(path: string): Promise<number> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { command: string; outcome: string })
    .filter((record) => record.command === 'query-status' && record.outcome === 'ok').length;
}

test('SIGHUP with the audit file moved away: serving goes on, later lines go to a new file at the path, none is lost', async () => {
  const dir = createTempDir('signals');
  const qmpPath = socketPathIn(dir, 'vm.qmp');
  const auditPath = join(dir, 'audit.log');
  const rotatedPath = join(dir, 'audit.log.1');
  const serve = spawnServe(['--launch', '--qmp', qmpPath, '--audit', auditPath]);
  try {
    await serve.waitForLog(message('upstream monitor connected'), 'the upstream');
    const client = await rawQmp(qmpPath);
    await client.waitForLines(1);
    await client.send('{"execute":"qmp_capabilities"}\n');
    await client.waitForLines(2);
    let batch = '';
    for (let id = 0; id < COMMANDS; id++) batch += `{"execute":"query-status","id":${id}}\n`;
    await client.send(batch);
    await client.waitForLines(2 + 10);
    // Moved while commands are still being answered and audited.
    await rename(auditPath, rotatedPath);
    serve.child.kill('SIGHUP');
    await serve.waitForLog(message('audit log reopened'), 'the audit file reopened');
    await client.send(`{"execute":"query-status","id":"after"}\n`);
    await client.waitForLines(2 + COMMANDS + 1);
    assert.ok(client.lines().at(-1)!.endsWith('"id": "after"}'), 'serving went on after SIGHUP');
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, { code: 0, signal: null });
    const before = await commandsIn(rotatedPath);
    const after = await commandsIn(auditPath);
    assert.ok(after >= 1, 'the command sent after SIGHUP is in the new file');
    assert.is(before + after, COMMANDS + 1, 'every command audited once, in one file or the other');
  } finally {
    serve.child.kill('SIGKILL');
    await removeTempDir(dir);
  }
});

/** Ends `serve` one way; resolves once it is asked to. */
type Ending = (serve: ServeProcess, qemuPid: number, qmpPath: string) => Promise<void>;

const ENDINGS: Array<[string, Ending, number]> = [
  ['SIGTERM', async (serve) => void serve.child.kill('SIGTERM'), 0],
  ['SIGINT', async (serve) => void serve.child.kill('SIGINT'), 0],
  [
    'SIGHUP, then SIGTERM',
    async (serve, _qemuPid, qmpPath) => {
      serve.child.kill('SIGHUP');
      // Without an audit file SIGHUP changes nothing visible: a client greeted afterwards shows the process lived on.
      const client = await rawQmp(qmpPath);
      await client.waitForLines(1);
      await client.close();
      serve.child.kill('SIGTERM');
    },
    0,
  ],
  ['the launched QEMU exiting', async (_serve, qemuPid) => void process.kill(qemuPid, 'SIGKILL'), 137],
];

for (const [name, end, status] of ENDINGS) {
  test(`${name}: no socket file and no temporary directory left`, async () => {
    const dir = createTempDir('signals');
    const tmp = createTempDir('signals-tmp');
    const sockets = { qmp: socketPathIn(dir, 'vm.qmp'), hmp: socketPathIn(dir, 'vm.hmp'), ro: socketPathIn(dir, 'vm.ro') };
    const serve = spawnServe(['--launch', '--qmp', sockets.qmp, '--hmp', sockets.hmp, '--read-only', sockets.ro], { TMPDIR: tmp });
    try {
      const launched = await serve.waitForLog(message('QEMU launched'), 'QEMU launched');
      await serve.waitForLog(message('upstream monitor connected'), 'the upstream');
      assert.equal(readdirSync(dir).sort(), ['vm.hmp', 'vm.qmp', 'vm.qmp.control', 'vm.ro'], 'the sockets and the control socket of qmpx status');
      assert.is(readdirSync(tmp).length, 1, "the launched QEMU's private directory");
      await end(serve, launched.qemuPid as number, sockets.qmp);
      assert.equal(await serve.exited, { code: status, signal: null });
      assert.equal(readdirSync(dir), [], 'sockets and private bind directories removed');
      assert.equal(readdirSync(tmp), [], 'temporary directories removed');
    } finally {
      serve.child.kill('SIGKILL');
      await removeTempDir(dir);
      await removeTempDir(tmp);
    }
  });
}

test.run();
