/**
 * The audit log: one NDJSON record per downstream command with time,
 * monitor, socket, client, command and outcome; arguments only when asked
 * for, number tokens exact.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openAuditLog } from '../../lib/proxy/audit.js';
import { silentLogger } from '../../lib/log.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { rawQmp } from '../helpers/qemu.js';
import { eventually, serveQemu, RecordingLogger } from './harness.js';

async function records(path: string): Promise<Array<Record<string, unknown>>> {
  return (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test('records commands with their outcome, without arguments by default', async () => {
  const dir = createTempDir('audit');
  const path = join(dir, 'audit.ndjson');
  const served = await serveQemu({ name: 'lab', audit: { path, arguments: false }, hmp: true });
  try {
    const client = await served.negotiatedClient();
    await client.send('{"execute":"query-status","id":1}\n{"execute":"no-such","id":2}\n{"execute":"qom-get","arguments":{"path":"/machine","property":"type"},"id":3}\n');
    await client.waitForLines(5);
    await client.close();
    const hmp = await rawQmp(served.hmpPath);
    await hmp.waitForText('(qemu) ');
    await hmp.send('info status\n');
    await hmp.waitForText(/\(qemu\) [^]*\(qemu\) $/);
    await hmp.close();
    await eventually(() => served.proxy.sessionCount === 0, 'the clients gone');
  } finally {
    await served.stop();
  }
  const lines = await records(path);
  assert.equal(
    lines.map((record) => [record.command, record.outcome, record.errorClass]),
    [
      ['qmp_capabilities', 'ok', undefined],
      ['query-status', 'ok', undefined],
      ['no-such', 'error', 'CommandNotFound'],
      ['qom-get', 'ok', undefined],
      ['human-monitor-command', 'ok', undefined],
    ],
  );
  for (const record of lines) {
    assert.is(record.monitor, 'lab');
    assert.is(record.socket, record.command === 'human-monitor-command' ? served.hmpPath : served.qmpPath);
    assert.type(record.client, 'number');
    assert.ok(!Number.isNaN(Date.parse(record.time as string)));
    assert.not.ok('arguments' in record);
  }
  await removeTempDir(dir);
});

test('with arguments: recorded as the client wrote the numbers', async () => {
  const dir = createTempDir('audit');
  const path = join(dir, 'audit.ndjson');
  const audit = openAuditLog(path, true, silentLogger);
  audit.record({ monitor: 'm', socket: '/s', client: 1, command: 'x', outcome: 'ok', argumentsJson: '{"n":18446744073709551615}' });
  audit.record({ monitor: 'm', socket: '/s', client: 1, command: 'y', outcome: 'lost' });
  await audit.close();
  const text = await readFile(path, 'utf8');
  assert.ok(text.includes('"arguments":{"n":18446744073709551615}}'));
  assert.is(text.trim().split('\n').length, 2);
  await removeTempDir(dir);
});

test('an audit file that cannot be written is logged once; serving goes on', async () => {
  const logger = new RecordingLogger();
  const audit = openAuditLog('/nonexistent-dir/qmpx/audit.ndjson', false, logger);
  audit.record({ monitor: 'm', socket: '/s', client: 1, command: 'x', outcome: 'ok' });
  await logger.waitFor('audit log cannot be written');
  audit.record({ monitor: 'm', socket: '/s', client: 1, command: 'y', outcome: 'ok' });
  await audit.close();
  assert.is(logger.entries.filter((entry) => entry.message.includes('audit log')).length, 1);
});

test.run();
