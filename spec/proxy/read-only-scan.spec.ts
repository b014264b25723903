/**
 * The read-only socket against everything QEMU knows, on a `pc` machine
 * with a dozen devices, a secret and TLS credentials: every QOM type (abstract ones too) with every
 * command that takes a type name, every allowed command that needs no
 * argument, and qom-list / qom-get over the whole QOM tree. After each
 * pass QEMU still runs, its run state has not changed and no reply carried
 * the secret. A control proves the scan would notice: the same request on
 * the full socket aborts QEMU.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { policyNamed } from '../../lib/proxy/policy.js';
import { READ_ONLY_COMMANDS } from '../../lib/proxy/read-only/commands.js';
import { startQemu, type RawClient } from '../helpers/qemu.js';
import { serveQemu, serveUpstream, type ServedQemu } from './harness.js';

const PASSPHRASE = 'PASSPHRASE-scan-7f3e';
const STATUS = '{"status": "prelaunch", "singlestep": false, "running": false}';
/** A long batch: every reply must arrive within this much of the one before. */
const REPLY_GAP_TIMEOUT_MS = 60_000;
const TYPENAME_COMMANDS = ['qom-list-properties', 'device-list-properties'];

type Reply = { return?: unknown; error?: { class: string; desc: string } };

/** Devices and objects of many kinds, so the QOM tree walk runs many kinds of getters. */
const DEVICES = ['usb-tablet', 'virtio-net-pci', 'e1000', 'virtio-balloon', 'virtio-rng-pci', 'virtio-serial-pci', 'ich9-ahci', 'virtio-scsi-pci', 'intel-hda', 'hda-duplex', 'VGA', 'pvpanic', 'i6300esb'];
const OBJECTS = [`secret,id=sec0,data=${PASSPHRASE}`, 'tls-creds-anon,id=tls0,endpoint=server', 'iothread,id=io0'];

let served: ServedQemu;
let client: RawClient;
/** Lines of `client` already handed out as replies (or events skipped). */
let consumed = 0;

test.before(async () => {
  const args = [...DEVICES.flatMap((device) => ['-device', device]), ...OBJECTS.flatMap((object) => ['-object', object])];
  served = await serveQemu({ readOnly: true, qemu: { machine: 'pc', args } });
  client = await served.negotiatedClient(served.readOnlyPath);
  consumed = 2;
});

test.after(async () => {
  await client?.close();
  await served?.stop();
});

/** Sends the commands pipelined and returns their replies in order (events skipped, none carrying the secret). */
async function run(commands: readonly object[]): Promise<Array<{ text: string; reply: Reply }>> {
  await client.send(commands.map((command) => JSON.stringify(command)).join('\n') + '\n');
  const replies: Array<{ text: string; reply: Reply }> = [];
  while (replies.length < commands.length) {
    if (client.lines().length <= consumed) await client.waitForLines(consumed + 1, REPLY_GAP_TIMEOUT_MS);
    const text = client.lines()[consumed++]!;
    assert.not.ok(text.includes(PASSPHRASE), `the secret leaked: ${text}`);
    const message = JSON.parse(text) as Reply & { event?: string };
    if (message.event === undefined) replies.push({ text, reply: message });
  }
  return replies;
}

/** QEMU's process is alive, answers on the full socket, and is still where it started. */
async function assertQemuUnchanged(): Promise<void> {
  assert.is(served.qemu.process.exitCode, null, 'QEMU exited');
  assert.is(served.qemu.process.signalCode, null, 'QEMU was killed');
  const full = await served.negotiatedClient();
  await full.send('{"execute":"query-status","id":"after"}\n');
  const [, , status] = await full.waitForLines(3);
  await full.close();
  assert.is(status, `{"return": ${STATUS}, "id": "after"}`);
}

test('every QOM type, abstract ones too, with every command that takes a type name', async () => {
  const [types] = await run([{ execute: 'qom-list-types', arguments: { abstract: true } }]);
  const names = (types!.reply.return as Array<{ name: string }>).map(({ name }) => name);
  assert.ok(names.length > 300, `${names.length} types`);
  for (const known of ['microvm-machine', 'virtio-gpu-gl-pci', 'qio-net-listener', 'colo-compare', 'device', 'secret']) assert.ok(names.includes(known), known);
  const commands = names.flatMap((typename) => [
    ...TYPENAME_COMMANDS.map((execute) => ({ execute, arguments: { typename } })),
    { execute: 'qom-list-types', arguments: { implements: typename, abstract: true } },
  ]);
  const replies = await run(commands);
  const policy = policyNamed('read-only');
  replies.forEach(({ text, reply }, index) => {
    const { execute } = commands[index]!;
    if (TYPENAME_COMMANDS.includes(execute)) assert.is(reply.error?.desc, policy.denial(execute), text);
    else assert.ok(Array.isArray(reply.return), text);
  });
  await assertQemuUnchanged();
});

test('every allowed command that needs no argument', async () => {
  const [schema] = await run([{ execute: 'query-qmp-schema' }]);
  type Entity = { name: string; 'meta-type': string; 'arg-type'?: string; members?: Array<{ name: string; default?: unknown }> };
  const entities = schema!.reply.return as Entity[];
  const byName = new Map(entities.map((entity) => [entity.name, entity]));
  const needsNoArgument = (command: Entity): boolean =>
    (byName.get(command['arg-type']!)?.members ?? []).every((member) => 'default' in member);
  const commands = entities
    .filter((entity) => entity['meta-type'] === 'command' && READ_ONLY_COMMANDS.has(entity.name) && entity.name !== 'qmp_capabilities')
    .filter(needsNoArgument)
    .map((entity) => ({ execute: entity.name }));
  assert.ok(commands.length > 40, `${commands.length} commands`);
  const replies = await run(commands);
  // An error (no balloon, no SEV here) is an answer too; what matters is what QEMU is after them.
  replies.forEach(({ text, reply }) => assert.ok(reply.return !== undefined || typeof reply.error?.desc === 'string', text));
  await assertQemuUnchanged();
});

test('qom-list and qom-get over the whole QOM tree: secrets refused, everything else read, QEMU unchanged', async () => {
  const pending = ['/'];
  let objects = 0;
  let reads = 0;
  while (pending.length > 0) {
    const batch = pending.splice(0);
    const lists = await run(batch.map((path) => ({ execute: 'qom-list', arguments: { path } })));
    const gets: Array<{ execute: string; arguments: { path: string; property: string } }> = [];
    lists.forEach(({ text, reply }, index) => {
      const path = batch[index]!;
      assert.ok(Array.isArray(reply.return), `${path}: ${text}`);
      objects++;
      for (const { name, type } of reply.return as Array<{ name: string; type: string }>) {
        if (type.startsWith('child<')) pending.push(`${path === '/' ? '' : path}/${name}`);
        gets.push({ execute: 'qom-get', arguments: { path, property: name } });
      }
    });
    reads += (await run(gets)).length;
  }
  assert.ok(objects > 300 && reads > 2500, `${objects} objects, ${reads} properties`);
  await assertQemuUnchanged();
});

test('control: the full socket forwards what the scan refused, and QEMU aborts on it', async () => {
  const qemu = await startQemu();
  const proxied = await serveUpstream(qemu.qmpPath);
  try {
    const full = await proxied.negotiatedClient();
    await full.send('{"execute":"qom-list-properties","arguments":{"typename":"microvm-machine"},"id":1}\n');
    const [, , reply] = await full.waitForLines(3);
    assert.is(reply, '{"id": 1, "error": {"class": "GenericError", "desc": "monitor connection lost"}}');
    await full.close();
    const status = await qemu.waitForExit();
    assert.is(status.signal, 'SIGABRT');
  } finally {
    await proxied.stop();
    await qemu.stop();
  }
});

test.run();
