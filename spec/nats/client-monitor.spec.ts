/**
 * connectNats(): a VM's monitor over NATS as a library user holds it,
 * against a real nats-server and a real QEMU behind `serve --nats`: the
 * Monitor members that work over a broker, the ones that say they do not,
 * and that importing 'qmpx' loads no NATS code until connectNats is called.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, connectNats, NoResponderError, QmpError, silentLogger, UnsupportedError, waitForEvent, type Monitor, type QmpEvent } from '../../lib/index.js';
import { monitorCommand } from '../../lib/passthrough/index.js';
import { startNatsServer, type NatsServerInstance } from '../helpers/nats-server.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { HOST, startNatsServe, type NatsServe } from './serve-harness.js';
import { rejectionOf } from '../helpers/rejection.js';

const INDEX = fileURLToPath(new URL('../../lib/index.js', import.meta.url));

let nats: NatsServerInstance;
let qemu: QemuInstance;
let direct: Monitor;
let serve: NatsServe;

test.before(async () => {
  nats = await startNatsServer();
  qemu = await startQemu({ extraQmpSockets: 1 });
  direct = await connect(qemu.extraQmpPaths[0]!);
  serve = await startNatsServe(nats, [{ name: 'vm-a', qemu }]);
});

test.after(async () => {
  await serve?.stop();
  await direct?.close();
  await qemu?.stop();
  await nats?.stop();
});

test('import("qmpx") loads no NATS module; connectNats loads it when called', async () => {
  const probe = `
    const { createRequire } = await import('node:module');
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes('@nats-io')).length;
    const qmpx = await import(process.argv[1]);
    const before = loaded();
    await qmpx.connectNats(process.argv[2]).catch(() => undefined);
    console.log(JSON.stringify([before, loaded() > 0]));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', probe, INDEX, 'nats://127.0.0.1:1/h/v']);
  assert.equal(JSON.parse(stdout), [0, true]);
});

test('execute, raw.send and the pass-through run on the VM; its events arrive on events$ in order', async () => {
  const vm = await connectNats(`${nats.url}/${HOST}/vm-a`, { logger: silentLogger });
  try {
    assert.is(vm.state, 'ready');
    assert.equal([vm.greeting, vm.banner, vm.capabilities, vm.relay], [null, null, [], null]);
    const events: QmpEvent[] = [];
    vm.events$.subscribe((event) => events.push(event));
    const resumed = waitForEvent(vm, 'RESUME', { timeoutMs: 10_000 });
    await vm.execute('cont');
    await resumed;
    const stopped = waitForEvent(vm, 'STOP', { timeoutMs: 10_000 });
    const reply = await vm.raw!.send('stop', undefined);
    assert.is(reply.text, '{"return": {}}');
    await stopped;
    assert.equal(events.map((event) => event.event), ['RESUME', 'STOP']);
    assert.is((await direct.execute<{ status: string }>('query-status')).status, 'paused');
    assert.is(await monitorCommand(vm, '{"execute":"query-status","id":18446744073709551615}'), '{"return": {"status": "paused", "singlestep": false, "running": false}, "id": 18446744073709551615}');
    assert.is(await vm.hmp('info status'), 'VM status: paused\n');
    const unknown = await rejectionOf(vm.execute('no-such-command'));
    assert.instance(unknown, QmpError);
    assert.is((unknown as QmpError).errorClass, 'CommandNotFound');
    assert.instance(await rejectionOf(vm.execute('query-status', undefined, { oob: true })), UnsupportedError);
  } finally {
    await vm.close();
  }
  assert.is(vm.state, 'closed');
  assert.equal(await vm.closed, { expected: true });
});

test('readOnly sends on .ro.: queries run, cont is refused by qmpx and the VM stays paused', async () => {
  const vm = await connectNats(`${nats.url}/${HOST}/vm-a`, { readOnly: true });
  try {
    assert.equal(await vm.execute('query-name'), {});
    const refused = await rejectionOf(vm.execute('cont'));
    assert.instance(refused, QmpError);
    assert.match((refused as QmpError).desc, /read-only policy of \.ro\. subjects/);
    assert.is((await direct.execute<{ status: string }>('query-status')).status, 'paused');
  } finally {
    await vm.close();
  }
});

test('a VM nobody serves: NoResponderError on the first request', async () => {
  const vm = await connectNats(`${nats.url}/${HOST}/vm-z`);
  try {
    const unanswered = await rejectionOf(vm.execute('query-status'));
    assert.instance(unanswered, NoResponderError);
    assert.is((unanswered as NoResponderError).code, 'NO_RESPONDER');
  } finally {
    await vm.close();
  }
});

test.run();
