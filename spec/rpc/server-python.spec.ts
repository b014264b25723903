/**
 * Debian's libvirt-python (/usr/bin/python3, libvirt + libvirt_qemu) against
 * startLibvirtEndpoint in front of a real QEMU: qemuMonitorCommand results
 * and errors, lookupByName of an unknown domain, event callbacks with their
 * exact arguments for events another QMP client causes, deregistration.
 * The client is spec/rpc/fixtures/libvirt_qemu_client.py; it prints JSON lines.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { QmpEvent } from '../../lib/qmp/wire.js';
import { COMMAND_DEADLINE_MS, DOMAIN_ID, DOMAIN_NAME, DOMAIN_UUID, SYSTEM_PYTHON, startEndpoint, type Endpoint } from './endpoint-harness.js';

const CLIENT = fileURLToPath(new URL('../../../spec/rpc/fixtures/libvirt_qemu_client.py', import.meta.url));

type Line = { step: string } & Record<string, unknown>;

let endpoint: Endpoint;
const lines: Line[] = [];
const seen: QmpEvent[] = [];
let exitCode: number | null = null;

/** Runs the client; the test drives cont/stop once it prints "ready". */
async function runClient(): Promise<void> {
  const child = spawn(SYSTEM_PYTHON, [CLIENT, endpoint.uri, DOMAIN_NAME], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buffered = '';
  let onLine = (): void => undefined;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const part of parts) lines.push(JSON.parse(part) as Line);
    onLine();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = setTimeout(() => child.kill('SIGKILL'), COMMAND_DEADLINE_MS);
  try {
    await new Promise<void>((resolve, reject) => {
      onLine = () => lines.some((line) => line.step === 'ready') && resolve();
      void exited.then(() => reject(new Error(`client exited before "ready": ${JSON.stringify(lines)}`)));
    });
    await endpoint.other.execute('cont');
    await endpoint.other.execute('stop');
    exitCode = await exited;
  } finally {
    clearTimeout(deadline);
  }
}

test.before(async () => {
  endpoint = await startEndpoint();
  endpoint.monitor.events$.subscribe((event) => seen.push(event));
  await runClient();
});
test.after(async () => {
  await endpoint.close();
});

function step(name: string): Line {
  const found = lines.find((line) => line.step === name);
  assert.ok(found, `no "${name}" line in ${JSON.stringify(lines)}`);
  return found;
}

test('the client ran to the end', () => {
  assert.is(exitCode, 0, JSON.stringify(lines));
  step('closed');
});

test('lookupByName of an unknown domain: code 42, libvirt\'s message', () => {
  const line = step('unknown');
  assert.is(line.code, 42);
  assert.is(line.message, "Domain not found: no domain with matching name 'nosuch'");
});

test('lookupByName returns the served domain', () => {
  assert.equal(step('lookup'), { step: 'lookup', name: DOMAIN_NAME, uuid: DOMAIN_UUID, id: DOMAIN_ID });
});

test('qemuMonitorCommand: libvirt\'s result shapes and errors', async () => {
  assert.match(step('qmp').result as string, /^\{"return":\{"status":"prelaunch","singlestep":false,"running":false\},"id":"libvirt-\d+"\}$/);
  // QEMU's own CRLF line ends, as libvirt passes HMP output through.
  assert.is(step('hmp').result, (await endpoint.other.hmp('info name')).replace(/\n/g, '\r\n'));
  const bare = step('bare').error as [number, number, string];
  assert.equal(bare.slice(0, 2), [1, 0]);
  assert.match(bare[2], /^internal error: cannot parse json query-status: /);
  assert.equal(step('caller-id').error, [1, 10, "internal error: Unable to append command 'id' string"]);
  assert.is(step('no-execute').result, '{"error":{"class":"GenericError","desc":"QMP input lacks member \'execute\'"}}');
  assert.equal(step('bad-flags').error, [8, 10, 'unsupported flags (0x2) in function qemuDomainQemuMonitorCommandWithFiles']);
  assert.equal(step('agent').error, [74, 10, 'argument unsupported: QEMU guest agent is not configured']);
  const badRegex = step('bad-regex').error as [number, number, string];
  assert.equal(badRegex.slice(0, 2), [8, 0]);
  assert.match(badRegex[2], /^invalid argument: failed to compile regex '\(': /);
});

test('event callbacks get (dom, event, seconds, micros, details, opaque) exactly', () => {
  const callbacks = lines.filter((line) => line.step === 'callback');
  const resume = seen.find((event) => event.event === 'RESUME')!;
  const stop = seen.find((event) => event.event === 'STOP')!;
  const expected = (event: QmpEvent, opaque: unknown): Line => ({
    step: 'callback',
    dom: DOMAIN_NAME,
    event: event.event,
    seconds: 'int',
    micros: 'int',
    secondsValue: event.timestamp.seconds,
    microsValue: event.timestamp.microseconds,
    details: null,
    opaque,
  });
  const sortKey = (line: Line): string => `${String(line.event)} ${JSON.stringify(line.opaque)}`;
  assert.equal(
    [...callbacks].sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
    [
      expected(resume, 'all-events'),
      expected(resume, { tag: 'regex-nocase' }),
      expected(stop, 'all-events'),
      expected(stop, 'stop-only'),
    ].sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
  );
});

test('deregistration succeeds once, then fails', async () => {
  assert.equal(step('deregister').results, [null, null, null]);
  const again = step('deregister-again').error as [number, number, string];
  assert.is(again[0], 8);
  assert.match(again[2], /event callback id \d+ not registered/);
  await endpoint.log.waitFor('monitor event callback deregistered', 3);
});

test.run();
