/**
 * The read-only socket: only the reviewed commands pass (whatever their
 * name), qom-get never reads a property that holds secret material, the
 * type-instantiating commands are refused, anything else is refused with a
 * GenericError naming the policy, in order with the client's other replies,
 * and audited as denied. An operator's deny list only takes commands away.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServeConfig } from '../../lib/cli/serve.js';
import { configFromJson } from '../../lib/proxy/config.js';
import { policyNamed } from '../../lib/proxy/policy.js';
import { READ_ONLY_COMMANDS, REFUSED_QUERY_COMMANDS, TYPE_INSTANTIATING_COMMANDS } from '../../lib/proxy/read-only/commands.js';
import { isSecretProperty } from '../../lib/proxy/read-only/secrets.js';
import { rawQmp, type RawClient } from '../helpers/qemu.js';
import { eventually, serveQemu, type ServedQemu } from './harness.js';

const STATUS = '{"status": "prelaunch", "singlestep": false, "running": false}';
const POLICY = 'by the qmpx read-only policy of this socket';
const denied = (command: string, id: number): string =>
  `{"id": ${id}, "error": {"class": "GenericError", "desc": "command '${command}' is not allowed ${POLICY}"}}`;
const secretDenied = (property: string, id: number): string =>
  `{"id": ${id}, "error": {"class": "GenericError", "desc": "property '${property}' may not be read ${POLICY}"}}`;
const PASSPHRASE = 'PASSPHRASE-a1b2c3';

let served: ServedQemu;

test.before(async () => {
  served = await serveQemu({
    readOnly: true,
    qemu: { args: ['-object', `secret,id=sec0,data=${PASSPHRASE}`, '-object', 'tls-creds-anon,id=tls0,endpoint=server'] },
  });
});

test.after(async () => {
  await served?.stop();
});

/** Sends each command (with ids 1..n) on a fresh negotiated read-only client and returns the n replies. */
async function onReadOnly(commands: readonly object[]): Promise<string[]> {
  const client: RawClient = await served.negotiatedClient(served.readOnlyPath);
  try {
    await client.send(commands.map((command, index) => JSON.stringify({ ...command, id: index + 1 })).join('\n') + '\n');
    return (await client.waitForLines(2 + commands.length)).slice(2);
  } finally {
    await client.close();
  }
}

test('the read-only policy: the reviewed list only, whatever the name', () => {
  const policy = policyNamed('read-only');
  for (const command of READ_ONLY_COMMANDS.keys()) assert.ok(policy.allows(command), command);
  for (const command of ['stop', 'cont', 'quit', 'human-monitor-command', 'qom-set', 'device_add', 'object-add', 'querystatus', 'query-', 'x-query-']) {
    assert.not.ok(policy.allows(command), command);
  }
  // A query command QEMU may add later is refused until reviewed.
  assert.not.ok(policy.allows('query-something-new'));
  assert.not.ok(policy.allows('x-query-something-new'));
  for (const command of [...REFUSED_QUERY_COMMANDS.keys(), ...TYPE_INSTANTIATING_COMMANDS.keys()]) assert.not.ok(policy.allows(command), command);
  assert.ok(policyNamed('full').allows('quit'));
  assert.is(policyNamed('full').refusal('qom-get', undefined), undefined);
});

test('every query command of the QEMU under test was reviewed: allowed or refused with a reason', async () => {
  const client = await served.negotiatedClient();
  await client.send('{"execute":"query-commands","id":1}\n');
  const [, , reply] = await client.waitForLines(3);
  await client.close();
  const names = (JSON.parse(reply!) as { return: Array<{ name: string }> }).return.map(({ name }) => name);
  const queries = names.filter((name) => name.startsWith('query-') || name.startsWith('x-query-'));
  assert.ok(queries.length > 60, `${queries.length} query commands`);
  const unreviewed = queries.filter((name) => !READ_ONLY_COMMANDS.has(name) && !REFUSED_QUERY_COMMANDS.has(name));
  assert.equal(unreviewed, []);
  const unknown = [...READ_ONLY_COMMANDS.keys()].filter((name) => name !== 'qmp_capabilities' && !names.includes(name));
  assert.equal(unknown, [], 'every allowed command exists in this QEMU');
});

test('qom-get of secret material is refused, by exact path, partial path and on TLS credentials', async () => {
  const replies = await onReadOnly([
    { execute: 'qom-get', arguments: { path: '/objects/sec0', property: 'data' } },
    { execute: 'qom-get', arguments: { path: 'sec0', property: 'data' } },
    { execute: 'qom-get', arguments: { property: 'data', path: '/objects/sec0', property2: 'x' } },
    { execute: 'qom-get', arguments: { path: '/objects/sec0', property: 'file' } },
    { execute: 'qom-get', arguments: { path: '/objects/sec0', property: 'keyid' } },
    { execute: 'qom-get', arguments: { path: '/objects/tls0', property: 'dir' } },
    { execute: 'qom-get', arguments: { path: '/objects/sec0', property: 'type' } },
    { execute: 'qom-get', arguments: { path: '/objects/tls0', property: 'endpoint' } },
    { execute: 'qom-list', arguments: { path: '/objects/sec0' } },
  ]);
  assert.is(replies[0], secretDenied('data', 1));
  assert.is(replies[1], secretDenied('data', 2));
  assert.is(replies[2], secretDenied('data', 3));
  assert.is(replies[3], secretDenied('file', 4));
  assert.is(replies[4], secretDenied('keyid', 5));
  assert.is(replies[5], secretDenied('dir', 6));
  assert.is(replies[6], '{"return": "secret", "id": 7}');
  assert.is(replies[7], '{"return": "server", "id": 8}');
  assert.ok(replies[8]!.includes('"name": "data"') && !replies[8]!.includes(PASSPHRASE), 'qom-list names properties, no values');
  for (const reply of replies) assert.not.ok(reply.includes(PASSPHRASE), reply);
});

test('qom-get: the property name is judged as QEMU decodes it (escapes, single quotes, a repeated key)', async () => {
  const client = await served.negotiatedClient(served.readOnlyPath);
  await client.send(
    [
      '{"execute":"qom-get","arguments":{"path":"sec0","\\u0070roperty":"d\\u0061ta"},"id":1}',
      "{'execute':'qom-get','arguments':{'path':'sec0','property':'data'},'id':2}",
      '{"execute":"qom-get","arguments":{"path":"sec0","property":"type","property":"data"},"id":3}',
      '',
    ].join('\n'),
  );
  const replies = (await client.waitForLines(5)).slice(2);
  await client.close();
  assert.is(replies[0], secretDenied('data', 1));
  assert.is(replies[1], secretDenied('data', 2));
  assert.is(replies[2], '{"error": {"class": "GenericError", "desc": "JSON parse error, duplicate key"}}');
});

test('the full socket next to it still reads the secret (the refusal is the policy, not QEMU)', async () => {
  const client = await served.negotiatedClient();
  await client.send('{"execute":"qom-get","arguments":{"path":"sec0","property":"data"},"id":1}\n');
  const [, , reply] = await client.waitForLines(3);
  assert.is(reply, `{"return": "${PASSPHRASE}", "id": 1}`);
  await client.close();
});

test('secret property names: exact names and families, in any letter case', () => {
  for (const name of ['data', 'file', 'iv', 'keyid', 'serial', 'dir', 'username', 'passwordid', 'password-secret', 'key-secret', 'Passphrase', 'dh-cert-file', 'session-file', 'mem-path']) {
    assert.ok(isSecretProperty(name), name);
  }
  for (const name of ['type', 'endpoint', 'loaded', 'format', 'realized', 'hotplugged', 'size', 'Data-len']) assert.not.ok(isSecretProperty(name), name);
});

test('type-instantiating commands are refused: the types that abort QEMU 7.2 no longer reach it', async () => {
  const replies = await onReadOnly([
    { execute: 'qom-list-properties', arguments: { typename: 'microvm-machine' } },
    { execute: 'qom-list-properties', arguments: { typename: 'qio-net-listener' } },
    { execute: 'qom-list-properties', arguments: { typename: 'colo-compare' } },
    { execute: 'device-list-properties', arguments: { typename: 'virtio-gpu-gl-pci' } },
    { execute: 'query-status' },
  ]);
  assert.is(replies[0], denied('qom-list-properties', 1));
  assert.is(replies[1], denied('qom-list-properties', 2));
  assert.is(replies[2], denied('qom-list-properties', 3));
  assert.is(replies[3], denied('device-list-properties', 4));
  assert.is(replies[4], `{"return": ${STATUS}, "id": 5}`, 'QEMU still runs');
  assert.is(served.qemu.process.exitCode, null, "QEMU process still alive");
});

test('the reviewed refusals among query commands', async () => {
  const replies = await onReadOnly([
    { execute: 'query-rx-filter' },
    { execute: 'query-cpu-model-expansion', arguments: { type: 'full', model: { name: 'qemu64' } } },
    { execute: 'x-query-jit' },
    { execute: 'query-name' },
  ]);
  assert.is(replies[0], denied('query-rx-filter', 1));
  assert.is(replies[1], denied('query-cpu-model-expansion', 2));
  assert.is(replies[2], denied('x-query-jit', 3));
  assert.is(replies[3], '{"return": {}, "id": 4}');
});

test('an operator deny list refuses more on that socket, and cannot allow anything', async () => {
  const tightened = await serveQemu({ readOnly: true, readOnlyDeny: ['qom-get', 'query-name'] });
  try {
    const client = await tightened.negotiatedClient(tightened.readOnlyPath);
    await client.send(
      [
        '{"execute":"qom-get","arguments":{"path":"/machine","property":"type"},"id":1}',
        '{"execute":"query-name","id":2}',
        '{"execute":"stop","id":3}',
        '{"execute":"query-status","id":4}',
        '',
      ].join('\n'),
    );
    const replies = (await client.waitForLines(6)).slice(2);
    assert.is(replies[0], denied('qom-get', 1));
    assert.is(replies[1], denied('query-name', 2));
    assert.is(replies[2], denied('stop', 3));
    assert.is(replies[3], `{"return": ${STATUS}, "id": 4}`);
    await client.close();
  } finally {
    await tightened.stop();
  }
  const policy = policyNamed('read-only', ['query-status']);
  assert.not.ok(policy.allows('query-status'));
  assert.ok(policy.allows('query-name'));
  assert.not.ok(policyNamed('read-only', ['quit']).allows('quit'), 'denying a refused command allows nothing');
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

test('readOnlyDeny in a config file and --read-only-deny on the command line', async () => {
  const fromFile = configFromJson({ monitors: [{ upstream: '/u', readOnly: '/r', readOnlyDeny: ['qom-get', 'query-name'] }] }, 'a.json');
  assert.equal(fromFile.monitors[0]!.readOnlyDeny, ['qom-get', 'query-name']);
  assert.throws(
    () => configFromJson({ monitors: [{ upstream: '/u', readOnly: '/r', readOnlyDeny: ['qom-get', 'qom_get'] }] }, 'c.json'),
    /c\.json: monitor 1: readOnlyDeny: 'qom_get' is not a command the read-only policy allows/,
  );
  await buildServeConfig({ upstream: '/u', readOnly: '/r', readOnlyDeny: 'stop' }, []).then(
    () => assert.unreachable('accepted'),
    (error: Error) => assert.match(error.message, /the command line: .*readOnlyDeny: 'stop' is not a command the read-only policy allows/),
  );
  for (const bad of ['qom-get', [1], ['']]) {
    assert.throws(() => configFromJson({ monitors: [{ upstream: '/u', readOnly: '/r', readOnlyDeny: bad }] }, 'b.json'), /b\.json: invalid config/);
  }
  const fromCli = await buildServeConfig({ upstream: '/u', readOnly: '/r', readOnlyDeny: 'qom-get,,query-name' }, []);
  assert.equal(fromCli.monitors[0]!.readOnlyDeny, ['qom-get', 'query-name']);
  await buildServeConfig({ readOnlyDeny: 'qom-get', config: '/nonexistent.json' }, []).then(
    () => assert.unreachable('accepted'),
    (error: Error) => assert.match(error.message, /--read-only-deny goes with --upstream or --launch/),
  );
});

test('docs/read-only-policy.md names every allowed and every refused command', async () => {
  const doc = await readFile(new URL('../../../docs/read-only-policy.md', import.meta.url), 'utf8');
  for (const command of [...READ_ONLY_COMMANDS.keys(), ...REFUSED_QUERY_COMMANDS.keys(), ...TYPE_INSTANTIATING_COMMANDS.keys()]) {
    assert.ok(doc.includes(`| \`${command}\` |`), command);
  }
});

test.run();
