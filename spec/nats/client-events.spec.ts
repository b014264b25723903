/**
 * `qmpx events nats://…` as a user runs it, against a real nats-server and
 * three real QEMUs (web-1, web-2, db-1) behind one `serve --nats`: the
 * --vm and --event globs let through exactly the matching events, in the
 * order the VMs raised them, printed as the socket form prints them.
 *
 * Events are caused on a second QMP socket of each QEMU. What the filtered
 * run must NOT print is proven absent, not just late: an unfiltered run
 * sees every event, and the closing event is caused only after that run has
 * printed all the others. The serve publishes on one NATS connection, and
 * NATS delivers one connection's messages to every subscriber in the order
 * they were published, so the filtered run has received every earlier
 * event before the closing one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, waitForEvent, type Monitor } from '../../lib/index.js';
import { startNatsServer, type NatsServerInstance } from '../helpers/nats-server.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { runQmpx, startQmpx, type CliProcess } from '../cli/cli-process.js';
import { HOST, startNatsServe, type NatsServe } from './serve-harness.js';

interface Vm {
  name: string;
  qemu: QemuInstance;
  /** A QMP connection to the QEMU's second socket, to cause events. */
  trigger: Monitor;
}

let nats: NatsServerInstance;
let serve: NatsServe;
let vms: Map<string, Vm>;
const running = new Set<CliProcess>();

test.before(async () => {
  nats = await startNatsServer();
  const started = await Promise.all(
    ['web-1', 'web-2', 'db-1'].map(async (name) => {
      const qemu = await startQemu({ extraQmpSockets: 1 });
      return { name, qemu, trigger: await connect(qemu.extraQmpPaths[0]!) };
    }),
  );
  vms = new Map(started.map((vm) => [vm.name, vm]));
  serve = await startNatsServe(nats, started);
});

test.after(async () => {
  for (const cli of running) cli.kill('SIGKILL');
  await serve?.stop();
  for (const vm of vms?.values() ?? []) {
    await vm.trigger.close();
    await vm.qemu.stop();
  }
  await nats?.stop();
});

function watch(args: string[]): CliProcess {
  const cli = startQmpx(['events', nats.url, ...args]);
  running.add(cli);
  return cli;
}

/** Runs `command` on the VM and resolves once its QEMU has raised `event` for it. */
async function cause(name: string, command: 'stop' | 'cont', event: 'STOP' | 'RESUME'): Promise<void> {
  const vm = vms.get(name)!;
  const raised = waitForEvent(vm.trigger, event, { timeoutMs: 10_000 });
  await vm.trigger.execute(command);
  await raised;
}

/** The lines of `text` without QEMU's times. */
function withoutTimes(text: string): string[] {
  return text.split('\n').filter((line) => line !== '').map((line) => line.replace(/ at \d+\.\d{6} for/, ' at S.U for'));
}

test('--vm and --event globs print exactly the matching events, in order, in the socket form', async () => {
  const everything = watch(['--loop']);
  const filtered = watch(['--vm', 'web-*', '--event', 'RES*', '--loop']);
  await everything.waitForStderr(/watching events on qmpx\.\*\.\*\.evt\.\*/);
  await filtered.waitForStderr(/watching events on qmpx\.\*\.\*\.evt\.\*/);

  await cause('web-1', 'cont', 'RESUME');
  await cause('db-1', 'cont', 'RESUME');
  await cause('web-2', 'cont', 'RESUME');
  await cause('web-1', 'stop', 'STOP');
  await cause('db-1', 'stop', 'STOP');
  await cause('web-1', 'cont', 'RESUME');
  await everything.waitForStdout(/(event .*\n){6}/);
  await cause('web-2', 'stop', 'STOP');
  await cause('web-2', 'cont', 'RESUME');
  await filtered.waitForStdout(/(event .*\n){4}/);
  await everything.waitForStdout(/(event .*\n){8}/);
  filtered.kill('SIGINT');
  everything.kill('SIGINT');
  const [shown, all] = [await filtered.finish(), await everything.finish()];

  assert.is(shown.code, 0, shown.stderr);
  assert.equal(withoutTimes(shown.stdout), [
    `event RESUME at S.U for domain '${HOST}/web-1': <null>`,
    `event RESUME at S.U for domain '${HOST}/web-2': <null>`,
    `event RESUME at S.U for domain '${HOST}/web-1': <null>`,
    `event RESUME at S.U for domain '${HOST}/web-2': <null>`,
    'event loop interrupted',
    'events received: 4',
  ]);
  assert.equal(withoutTimes(all.stdout), [
    `event RESUME at S.U for domain '${HOST}/web-1': <null>`,
    `event RESUME at S.U for domain '${HOST}/db-1': <null>`,
    `event RESUME at S.U for domain '${HOST}/web-2': <null>`,
    `event STOP at S.U for domain '${HOST}/web-1': <null>`,
    `event STOP at S.U for domain '${HOST}/db-1': <null>`,
    `event RESUME at S.U for domain '${HOST}/web-1': <null>`,
    `event STOP at S.U for domain '${HOST}/web-2': <null>`,
    `event RESUME at S.U for domain '${HOST}/web-2': <null>`,
    'event loop interrupted',
    'events received: 8',
  ]);
  for (const vm of vms.values()) await vm.trigger.execute('stop').catch(() => undefined);
});

test('names without a wildcard narrow the subscription to their tokens; --json adds host and vm to QEMU\'s event', async () => {
  const cli = watch(['--host', HOST, '--vm', 'db-1', '--event', 'RESUME', '--json']);
  await cli.waitForStderr(new RegExp(`watching events on qmpx\\.${HOST}\\.db-1\\.evt\\.RESUME `));
  await cause('web-1', 'cont', 'RESUME');
  await cause('db-1', 'cont', 'RESUME');
  const result = await cli.finish();
  assert.is(result.code, 0, result.stderr);
  const lines = result.stdout.split('\n').filter((line) => line !== '');
  assert.is(lines.length, 1);
  const event = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(Object.keys(event), ['timestamp', 'event', 'host', 'vm']);
  assert.equal([event.event, event.host, event.vm], ['RESUME', HOST, 'db-1']);
  assert.match(result.stderr, 'events received: 1');
});

test('--timeout with no matching event: "event loop timed out", exit 1, as the socket form', async () => {
  const result = await runQmpx(['events', nats.url, '--vm', 'no-such-vm', '--timeout', '0.5']);
  assert.is(result.code, 1);
  assert.is(result.stdout, 'event loop timed out\nevents received: 0\n');
});

test('an unreachable NATS server: exit 2 with one line naming it', async () => {
  const down = await startNatsServer({ startDown: true });
  try {
    const result = await runQmpx(['events', down.url, '--timeout', '5']);
    assert.is(result.code, 2);
    assert.match(result.stderr, `qmpx events: error: cannot connect to NATS at ${down.url}`);
  } finally {
    await down.stop();
  }
});

test.run();
