/**
 * Debian's real virsh (libvirt-clients 9.0) against startLibvirtEndpoint in
 * front of a real QEMU: qemu-monitor-command output shapes as in
 * spec/rpc/vectors/virsh-qemu-monitor-command.txt, lookups by name, id
 * and uuid, an unknown domain, and qemu-monitor-event seeing events another
 * QMP client causes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stringifyJson } from '../../lib/qmp/json.js';
import { DOMAIN_ID, DOMAIN_NAME, DOMAIN_UUID, startEndpoint, virsh, type Endpoint } from './endpoint-harness.js';

let endpoint: Endpoint;

test.before(async () => {
  endpoint = await startEndpoint();
});
test.after(async () => {
  await endpoint.close();
});

/** QEMU's own query-status value, compact, as libvirt would print it. */
async function statusText(): Promise<string> {
  return stringifyJson(await endpoint.other.execute('query-status'));
}

test('qemu-monitor-command: compact reply with a libvirt-N id, as libvirt prints it', async () => {
  const result = await virsh(endpoint, 'qemu-monitor-command', DOMAIN_NAME, '{"execute":"query-status"}');
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`^\\{"return":${escape(await statusText())},"id":"libvirt-\\d+"\\}\\n\\n$`));
});

test('qemu-monitor-command --pretty indents by 2 and keeps the id', async () => {
  const result = await virsh(endpoint, 'qemu-monitor-command', DOMAIN_NAME, '--pretty', '{"execute":"query-status"}');
  assert.is(result.code, 0, result.stderr);
  const id = /"id": "(libvirt-\d+)"/.exec(result.stdout)?.[1];
  assert.ok(id, result.stdout);
  const status = JSON.parse(await statusText()) as unknown;
  assert.is(result.stdout, `${JSON.stringify({ return: status, id }, null, 2)}\n`);
});

test('qemu-monitor-command --return-value prints only the return value', async () => {
  const result = await virsh(endpoint, 'qemu-monitor-command', DOMAIN_NAME, '{"execute":"query-status"}', '--return-value');
  assert.is(result.code, 0, result.stderr);
  assert.is(result.stdout, `${await statusText()}\n`);
});

test('qemu-monitor-command --hmp prints the human monitor text', async () => {
  const result = await virsh(endpoint, 'qemu-monitor-command', DOMAIN_NAME, '--hmp', 'info', 'status');
  assert.is(result.code, 0, result.stderr);
  // QEMU's CRLF kept, then virsh's own two newlines (virsh-qemu-monitor-command.txt).
  assert.is(result.stdout, `${(await endpoint.other.hmp('info status')).trimEnd()}\r\n\n\n`);
});

test('qemu-monitor-command: a QMP error is printed with the id first, exit 0', async () => {
  const result = await virsh(endpoint, 'qemu-monitor-command', DOMAIN_NAME, '{"execute":"no-such-command"}');
  assert.is(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    /^\{"id":"libvirt-\d+","error":\{"class":"CommandNotFound","desc":"The command no-such-command has not been found"\}\}\n\n$/,
  );
});

test('qemu-monitor-command: a caller id is refused as libvirt refuses it', async () => {
  const result = await virsh(endpoint, 'qemu-monitor-command', DOMAIN_NAME, '{"execute":"query-status","id":"myid-42"}');
  assert.is(result.code, 1);
  assert.match(result.stderr, "error: internal error: Unable to append command 'id' string");
});

test('lookup by id and by uuid reach the same domain', async () => {
  for (const key of [String(DOMAIN_ID), DOMAIN_UUID]) {
    const result = await virsh(endpoint, 'qemu-monitor-command', key, '--hmp', 'info', 'name');
    assert.is(result.code, 0, `${key}: ${result.stderr}`);
  }
  const ids = await Promise.all(
    [DOMAIN_NAME, String(DOMAIN_ID), DOMAIN_UUID].map((key) => virsh(endpoint, 'qemu-monitor-command', key, '{"execute":"query-name"}')),
  );
  for (const result of ids) assert.match(result.stdout, /^\{"return":\{\},"id":"libvirt-\d+"\}/);
});

test('unknown domain: exit 1 with virsh\'s failed to get domain', async () => {
  const result = await virsh(endpoint, 'qemu-monitor-command', 'nosuch', '{"execute":"query-status"}');
  assert.is(result.code, 1);
  assert.match(result.stderr, "error: failed to get domain 'nosuch'");
});

/** Starts `virsh qemu-monitor-event lab1 ARGS --loop --timeout 5`. */
function watchEvents(...args: string[]) {
  return virsh(endpoint, 'qemu-monitor-event', DOMAIN_NAME, ...args, '--loop', '--timeout', '5');
}

const EVENT_LINE = (name: string): RegExp => new RegExp(`^event ${name} at \\d+\\.\\d{6} for domain '${DOMAIN_NAME}': <null>$`);

test('qemu-monitor-event --event STOP / --regex / --no-case see events another client causes', async () => {
  const registered = endpoint.log.count('monitor event callback registered');
  const stopOnly = watchEvents('--event', 'STOP');
  const regex = watchEvents('--event', 'S.*P', '--regex');
  const noCase = watchEvents('--event', 'resume', '--no-case');
  await endpoint.log.waitFor('monitor event callback registered', registered + 3);
  for (const command of ['cont', 'stop', 'cont', 'stop']) await endpoint.other.execute(command);

  const stopOut = await stopOnly;
  assert.is(stopOut.code, 0, stopOut.stderr);
  const stopLines = stopOut.stdout.trim().split('\n');
  assert.is(stopLines.length, 4, stopOut.stdout);
  assert.match(stopLines[0]!, EVENT_LINE('STOP'));
  assert.match(stopLines[1]!, EVENT_LINE('STOP'));
  assert.is(stopLines[2], 'event loop timed out');
  assert.is(stopLines[3], 'events received: 2');

  const regexLines = (await regex).stdout.trim().split('\n');
  assert.is(regexLines.filter((line) => EVENT_LINE('STOP').test(line)).length, 2, regexLines.join('\n'));
  assert.is(regexLines.at(-1), 'events received: 2');

  const noCaseLines = (await noCase).stdout.trim().split('\n');
  assert.is(noCaseLines.filter((line) => EVENT_LINE('RESUME').test(line)).length, 2, noCaseLines.join('\n'));
  assert.is(noCaseLines.at(-1), 'events received: 2');
});

test('qemu-monitor-event deregisters when it exits', async () => {
  await endpoint.log.waitFor('monitor event callback deregistered', 3);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test.run();
