/**
 * A monitor served with `--validate`: its QMP sockets (full and read-only)
 * answer arguments QEMU's schema does not take with exactly the reply QEMU
 * gives them, in the client's reply order, without sending them upstream
 * (audited as denied); what QEMU takes passes. Without the setting nothing
 * is checked and the schema is not asked for.
 *
 * One guest-less QEMU with three QMP sockets: a monitor served with
 * --validate, a monitor served without it, and one spoken to directly, so
 * every reply is compared with QEMU's own for the same bytes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServeConfig } from '../../lib/cli/serve.js';
import { QmpxError } from '../../lib/errors.js';
import { configFromJson } from '../../lib/proxy/config.js';
import { startServe, type ServeHandle } from '../../lib/proxy/daemon.js';
import { rawQmp, startQemu, type QemuInstance, type RawClient } from '../helpers/qemu.js';
import { startFakePeer } from '../helpers/fake-peer.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { eventually, RecordingLogger, serveUpstream } from './harness.js';

let qemu: QemuInstance;
let dir: string;
let handle: ServeHandle | undefined;
let auditPath: string;
let checkedPath: string;
let checkedReadOnlyPath: string;
let plainPath: string;

test.before(async () => {
  qemu = await startQemu({ extraQmpSockets: 2 });
  dir = createTempDir('validate');
  auditPath = join(dir, 'audit.ndjson');
  checkedPath = socketPathIn(dir, 'checked.sock');
  checkedReadOnlyPath = socketPathIn(dir, 'checked-ro.sock');
  plainPath = socketPathIn(dir, 'plain.sock');
  // The checked monitor as `qmpx serve --upstream ... --validate` makes it; the plain one as a config file without the key.
  const config = await buildServeConfig(
    { upstream: qemu.qmpPath, qmp: checkedPath, readOnly: checkedReadOnlyPath, validate: true, name: 'checked', audit: auditPath },
    [],
  );
  config.monitors.push(...configFromJson({ monitors: [{ name: 'plain', upstream: qemu.extraQmpPaths[0], qmp: plainPath }] }, 'spec').monitors);
  config.logLevel = 'debug';
  handle = await startServe(config, { logger: new RecordingLogger(), shutdownGraceMs: 2000 });
});

test.after(async () => {
  await handle?.stop();
  await removeTempDir(dir);
  await qemu?.stop();
});

async function negotiated(path: string): Promise<RawClient> {
  const client = await rawQmp(path);
  await client.waitForLines(1);
  await client.send('{"execute":"qmp_capabilities"}\n');
  await client.waitForLines(2);
  return client;
}

/** Sends `lines` in one write and returns the replies that follow the greeting and the capabilities reply. */
async function replies(client: RawClient, lines: readonly string[]): Promise<string[]> {
  const from = client.lines().length;
  await client.send(lines.map((line) => `${line}\n`).join(''));
  return (await client.waitForLines(from + lines.length)).slice(from);
}

/** What QEMU itself answers to `lines`, on its own socket. */
async function fromQemu(lines: readonly string[]): Promise<string[]> {
  const client = await negotiated(qemu.extraQmpPaths[1]!);
  try {
    return await replies(client, lines);
  } finally {
    await client.close();
  }
}

const INVALID = {
  misspelt: '{"execute":"query-status","arguments":{"verbsoe":true},"id":"misspelt"}',
  wrongType: '{"execute":"qom-list","arguments":{"path":42},"id":"wrong-type"}',
  missing: '{"execute":"qom-list","arguments":{},"id":"missing"}',
  badObjectMember: '{"execute":"object-add","arguments":{"qom-type":"secret","id":"sec-bad","data":"x","colour":"red"},"id":"object-add"}',
  floatForInt: '{"execute":"remove-fd","arguments":{"fdset-id":1.0},"id":"float"}',
  pastUint64: '{"execute":"remove-fd","arguments":{"fdset-id":18446744073709551616},"id":"past-uint64"}',
  badEnum: '{"execute":"query-cpu-model-expansion","arguments":{"type":"widest","model":{"name":"max"}},"id":"enum"}',
};

const VALID = {
  status: '{"execute":"query-status","id":"status"}',
  qomList: '{"execute":"qom-list","arguments":{"path":"/machine/unattached"},"id":"qom-list"}',
  // Valid arguments that QEMU then refuses: the command itself must run in QEMU.
  bigFdset: '{"execute":"remove-fd","arguments":{"fdset-id":9223372036854775807},"id":"big"}',
  objectAdd: '{"execute":"object-add","arguments":{"qom-type":"secret","id":"sec-good","data":"x"},"id":"object-add-ok"}',
};

test('a misspelt member, a wrong type, a missing member, a double for an integer: QEMU\'s reply, word for word, from the checked socket', async () => {
  const lines = Object.values(INVALID);
  const expected = await fromQemu(lines);
  // QEMU reports every argument problem as a GenericError.
  for (const reply of expected) assert.match(reply, /"class": "GenericError"/);
  assert.match(expected[0]!, /Parameter 'verbsoe' is unexpected/);
  assert.match(expected[1]!, /Invalid parameter type for 'path', expected: string/);
  assert.match(expected[2]!, /Parameter 'path' is missing/);
  const client = await negotiated(checkedPath);
  try {
    assert.equal(await replies(client, lines), expected);
    // The refused object-add created nothing, and the connection goes on.
    const [objects] = await replies(client, ['{"execute":"qom-list","arguments":{"path":"/objects"},"id":"objects"}']);
    // A guest-less QEMU has no /objects until an object is added.
    assert.is(objects, '{"id": "objects", "error": {"class": "DeviceNotFound", "desc": "Device \'/objects\' not found"}}');
  } finally {
    await client.close();
  }
});

test('valid arguments pass, big integers included, and QEMU answers them', async () => {
  const client = await negotiated(checkedPath);
  try {
    const [status, qomList, big, objectAdd] = await replies(client, Object.values(VALID));
    assert.match(status!, /"return": \{"status": "prelaunch"/);
    assert.match(qomList!, /"return": \[/);
    // QEMU's own refusal of the fd set, not an argument error: the command ran there.
    assert.match(big!, /"id": "big", "error": \{"class": "GenericError"/);
    assert.not.match(big!, /Invalid parameter type/);
    assert.is(objectAdd, '{"return": {}, "id": "object-add-ok"}');
    const [objects] = await replies(client, ['{"execute":"qom-list","arguments":{"path":"/objects"},"id":"objects"}']);
    assert.match(objects!, /"name": "sec-good"/);
  } finally {
    await client.close();
  }
});

test('pipelined valid and invalid commands keep their reply order, each reply QEMU\'s own', async () => {
  const lines: string[] = [];
  for (let round = 0; round < 4; round++) {
    lines.push(
      `{"execute":"query-status","id":"s${round}"}`,
      `{"execute":"qom-list","arguments":{"paht":"/"},"id":"bad${round}"}`,
      `{"execute":"query-name","id":"n${round}"}`,
      `{"execute":"query-kvm","arguments":{"x":${round}},"id":"extra${round}"}`,
      `{"execute":"qom-list","arguments":{"path":"/"},"id":"ok${round}"}`,
    );
  }
  const expected = await fromQemu(lines);
  const client = await negotiated(checkedPath);
  try {
    assert.equal(await replies(client, lines), expected);
  } finally {
    await client.close();
  }
});

test('the read-only socket checks arguments too, after its policy', async () => {
  const lines = ['{"execute":"query-status","arguments":{"all":1},"id":1}', '{"execute":"stop","arguments":{"now":true},"id":2}', '{"execute":"query-name","id":3}'];
  const [unexpected] = await fromQemu(lines.slice(0, 1));
  const client = await negotiated(checkedReadOnlyPath);
  try {
    const [first, second, third] = await replies(client, lines);
    assert.is(first, unexpected);
    assert.match(second!, /command 'stop' is not allowed by the qmpx read-only policy/);
    assert.match(third!, /"return": \{/);
  } finally {
    await client.close();
  }
});

test('off by default: the plain socket sends everything to QEMU, whose replies are the same', async () => {
  assert.ok(handle!.proxies[0]!.upstream.current?.argumentChecks, 'the checked link has its schema checks');
  assert.is(handle!.proxies[1]!.upstream.current?.argumentChecks, undefined, 'the plain link asked for no schema');
  const lines = Object.values(INVALID).slice(0, 3);
  const expected = await fromQemu(lines);
  const client = await negotiated(plainPath);
  try {
    assert.equal(await replies(client, lines), expected);
  } finally {
    await client.close();
  }
});

test('the audit: refused arguments are denied (never sent), the same commands without --validate are QEMU\'s errors', async () => {
  await eventually(() => handle!.proxies.every((proxy) => proxy.sessionCount === 0), 'the clients gone');
  await handle!.stop();
  handle = undefined;
  const records = (await readFile(auditPath, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const outcomes = (monitor: string, command: string): unknown[] =>
    records.filter((record) => record.monitor === monitor && record.command === command).map((record) => record.outcome);
  const onChecked = records.filter((record) => record.socket === checkedPath);
  // Denied lines past the audit's per-socket window are folded into one line that counts them.
  const deniedCount = onChecked.filter((record) => record.outcome === 'denied').reduce((sum, record) => sum + (typeof record.folded === 'number' ? record.folded : 1), 0);
  assert.is(deniedCount, Object.keys(INVALID).length + 2 * 4);
  assert.equal(outcomes('checked', 'object-add'), ['denied', 'ok']);
  assert.equal(outcomes('checked', 'remove-fd'), ['denied', 'denied', 'error']);
  // QEMU's only errors on the checked socket are its answers to valid calls (no /objects yet, no such fd set): no invalid argument reached it.
  assert.equal(
    onChecked.filter((record) => record.outcome === 'error').map((record) => [record.command, record.errorClass]),
    [['qom-list', 'DeviceNotFound'], ['remove-fd', 'GenericError']],
  );
  assert.equal(
    records.filter((record) => record.socket === checkedReadOnlyPath).map((record) => [record.command, record.outcome]),
    [['qmp_capabilities', 'ok'], ['query-status', 'denied'], ['stop', 'denied'], ['query-name', 'ok']],
  );
  assert.equal(outcomes('plain', 'query-status'), ['error']);
  assert.equal(outcomes('plain', 'qom-list'), ['error', 'error']);
  const plainErrors = records.filter((record) => record.monitor === 'plain' && record.outcome === 'error');
  for (const record of plainErrors) assert.is(record.errorClass, 'GenericError');
});

test('the setting: "off" or "reject" per monitor in a config file, --validate only with the command line\'s monitor', async () => {
  const monitor = { upstream: '/run/vm.qmp', qmp: '/run/vm-proxy.qmp' };
  assert.is(configFromJson({ monitors: [{ ...monitor, validate: 'reject' }] }, 'spec').monitors[0]!.validate, 'reject');
  assert.is(configFromJson({ monitors: [monitor] }, 'spec').monitors[0]!.validate, undefined);
  assert.throws(() => configFromJson({ monitors: [{ ...monitor, validate: 'warn' }] }, 'spec'), (error: unknown) => error instanceof QmpxError);
  assert.is((await buildServeConfig({ ...monitor }, [])).monitors[0]!.validate, undefined);
  try {
    await buildServeConfig({ validate: true, config: '/nonexistent.json' }, []);
    assert.unreachable('--validate without --upstream or --launch was accepted');
  } catch (error) {
    assert.instance(error, QmpxError);
    assert.match((error as Error).message, /--validate goes with --upstream or --launch/);
  }
});

// A fake upstream: QEMU cannot be made to refuse its own schema.
test('an upstream whose schema cannot be read is never reported up: no client is greeted, nothing passes unchecked, stop() still ends', async () => {
  const peer = await startFakePeer();
  peer.autoRespond({});
  peer.expect('query-qmp-schema').replyError('GenericError', 'no schema here').expectClose();
  peer.accept().expect('query-qmp-schema').replyError('GenericError', 'no schema here').expectClose();
  // The third connection's schema request is never answered: stop() must not wait for it.
  peer.accept().waitForCommand('query-qmp-schema').silence();
  const served = await serveUpstream(peer.path, {
    name: 'vm',
    serve: { proxy: { upstream: { checkArguments: true, initialBackoffMs: 10, maxBackoffMs: 50 } } },
  });
  try {
    const client = await rawQmp(served.qmpPath);
    await served.logger.waitFor("cannot read the upstream's schema");
    await peer.done();
    // Sessions are greeted when a link is reported up, and none was.
    assert.is(client.lines().length, 0);
    assert.is(served.proxy.upstream.current, undefined);
    assert.equal(peer.commands().filter((command) => command !== 'qmp_capabilities'), ['query-qmp-schema', 'query-qmp-schema', 'query-qmp-schema']);
    await client.close();
  } finally {
    await served.stop();
    await peer.close();
  }
});

test.run();
