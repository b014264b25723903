/**
 * The read-only socket: `query-*` and the documented safe list pass, anything
 * that could change the VM (including human-monitor-command) is refused with
 * a GenericError naming the policy, in order with the client's other replies,
 * and audited as denied.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { policyNamed, READ_ONLY_SAFE_COMMANDS } from '../../lib/proxy/policy.js';
import { rawQmp } from '../helpers/qemu.js';
import { eventually, serveQemu, type ServedQemu } from './harness.js';

const STATUS = '{"status": "prelaunch", "singlestep": false, "running": false}';
const denied = (command: string, id: number): string =>
  `{"id": ${id}, "error": {"class": "GenericError", "desc": "command '${command}' is not allowed by the qmpx read-only policy of this socket"}}`;

let served: ServedQemu;

test.before(async () => {
  served = await serveQemu({ readOnly: true, qemu: {} });
});

test.after(async () => {
  await served?.stop();
});

test('the read-only policy: query-*, x-query-* and the safe list only', () => {
  const policy = policyNamed('read-only');
  for (const command of ['query-status', 'query-qmp-schema', 'x-query-roms', ...READ_ONLY_SAFE_COMMANDS]) assert.ok(policy.allows(command), command);
  for (const command of ['stop', 'cont', 'quit', 'human-monitor-command', 'qom-set', 'device_add', 'object-add', 'querystatus']) {
    assert.not.ok(policy.allows(command), command);
  }
  assert.ok(policyNamed('full').allows('quit'));
});

test('refused commands get a GenericError naming the policy, in order; queries pass', async () => {
  const client = await rawQmp(served.readOnlyPath);
  await client.waitForLines(1);
  await client.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}\n');
  await client.waitForLines(2);
  await client.send(
    [
      '{"execute":"query-status","id":1}',
      '{"execute":"cont","id":2}',
      '{"execute":"human-monitor-command","arguments":{"command-line":"cont"},"id":3}',
      '{"exec-oob":"migrate-pause","id":4}',
      '{"execute":"qom-list","arguments":{"path":"/"},"id":5}',
      '{"execute":"query-status","id":6}',
      '',
    ].join('\n'),
  );
  const lines = (await client.waitForLines(8)).slice(2);
  assert.is(lines[0], `{"return": ${STATUS}, "id": 1}`);
  assert.is(lines[1], denied('cont', 2));
  assert.is(lines[2], denied('human-monitor-command', 3));
  assert.is(lines[3], denied('migrate-pause', 4));
  assert.ok(lines[4]!.startsWith('{"return": [') && lines[4]!.endsWith('"id": 5}'));
  assert.is(lines[5], `{"return": ${STATUS}, "id": 6}`, 'cont was not run');
  await client.close();
});

test('the full socket next to it is not restricted', async () => {
  const client = await served.negotiatedClient();
  await client.send('{"execute":"human-monitor-command","arguments":{"command-line":"info status"},"id":7}\n');
  const [, , reply] = await client.waitForLines(3);
  assert.is(reply, '{"return": "VM status: paused (prelaunch)\\r\\n", "id": 7}');
  await client.close();
});

test('denied commands are audited as denied', async () => {
  const auditPath = join(served.dir, 'audit.ndjson');
  const audited = await serveQemu({ readOnly: true, audit: { path: auditPath, arguments: false } });
  try {
    const client = await audited.negotiatedClient(audited.readOnlyPath);
    await client.send('{"execute":"stop","id":1}\n');
    await client.waitForLines(3);
    await client.close();
    await eventually(() => audited.proxy.sessionCount === 0, 'the client gone');
  } finally {
    await audited.stop();
  }
  const records = (await readFile(auditPath, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  const stop = records.find((record) => record.command === 'stop');
  assert.is(stop?.outcome, 'denied');
  assert.is(stop?.socket, audited.readOnlyPath);
});

test.run();
