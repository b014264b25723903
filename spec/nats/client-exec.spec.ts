/**
 * `qmpx exec nats://…` as a user runs it (the built CLI in a child process)
 * against a real nats-server and two real QEMUs behind one `serve --nats`:
 * each command reaches the VM it names and no other; a VM found without
 * its host; no responder; a request with no reply in time is "outcome
 * unknown" with its own exit status, never "failed". The state of each VM
 * is read on a second QMP socket of its QEMU, past qmpx.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, waitForEvent, type Monitor } from '../../lib/index.js';
import { EXIT_OUTCOME_UNKNOWN } from '../../lib/cli/nats-exec.js';
import { startNatsServer, type NatsServerInstance } from '../helpers/nats-server.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { runQmpx } from '../cli/cli-process.js';
import { HOST, startNatsServe, type NatsServe } from './serve-harness.js';

interface Vm {
  name: string;
  qemu: QemuInstance;
  /** A QMP connection to the QEMU's second socket, past qmpx. */
  direct: Monitor;
}

let nats: NatsServerInstance;
let serve: NatsServe;
let vms: Vm[];

test.before(async () => {
  nats = await startNatsServer();
  vms = await Promise.all(
    ['vm-a', 'vm-b'].map(async (name) => {
      const qemu = await startQemu({ extraQmpSockets: 1, args: ['-name', name] });
      return { name, qemu, direct: await connect(qemu.extraQmpPaths[0]!) };
    }),
  );
  // JetStream on: the run-state bucket is where a VM named without its host is found.
  serve = await startNatsServe(nats, vms, { jetStream: true });
});

test.after(async () => {
  await serve?.stop();
  for (const vm of vms ?? []) {
    await vm.direct.close();
    await vm.qemu.stop();
  }
  await nats?.stop();
});

async function status(vm: Vm): Promise<string> {
  return (await vm.direct.execute<{ status: string }>('query-status')).status;
}

test('each command runs on the VM the URL names, and on no other', async () => {
  for (const vm of vms) {
    const result = await runQmpx(['exec', `${nats.url}/${HOST}/${vm.name}`, 'query-name']);
    assert.is(result.code, 0, result.stderr);
    assert.is(result.stdout, `{"return":{"name":"${vm.name}"}}\n`);
  }
  const [a, b] = vms as [Vm, Vm];
  assert.is(await status(a), 'prelaunch');
  assert.is(await status(b), 'prelaunch');
  const resumed = await runQmpx(['exec', `${nats.url}/${HOST}/vm-b`, 'cont']);
  assert.is(resumed.code, 0, resumed.stderr);
  assert.is(resumed.stdout, '{"return":{}}\n');
  assert.is(await status(b), 'running');
  assert.is(await status(a), 'prelaunch', 'the other VM is untouched');
  const stopped = await runQmpx(['exec', `${nats.url}/${HOST}/vm-b`, 'stop']);
  assert.is(stopped.code, 0, stopped.stderr);
  assert.is(await status(b), 'paused');
  assert.is(await status(a), 'prelaunch');
});

test('a VM named without its host is found through the run-state bucket', async () => {
  const result = await runQmpx(['exec', `${nats.url}/vm-a`, 'query-name', '--return-value']);
  assert.is(result.code, 0, result.stderr);
  assert.is(result.stdout, '{"name":"vm-a"}\n');
});

test('an HMP line runs with --hmp and prints the text', async () => {
  const result = await runQmpx(['exec', `${nats.url}/${HOST}/vm-a`, '--hmp', 'info', 'status']);
  assert.is(result.code, 0, result.stderr);
  assert.is(result.stdout, 'VM status: paused (prelaunch)\n');
});

test("QEMU's error reply is printed and exits 1, as on a socket", async () => {
  const result = await runQmpx(['exec', `${nats.url}/${HOST}/vm-a`, 'no-such-command']);
  assert.is(result.code, 1);
  assert.is(result.stdout, '{"error":{"class":"CommandNotFound","desc":"The command no-such-command has not been found"}}\n');
});

test('no serve for the VM: exit 2, saying no serve answers for it and nothing ran', async () => {
  const named = await runQmpx(['exec', `${nats.url}/${HOST}/vm-c`, 'query-status']);
  assert.is(named.code, 2);
  assert.match(named.stderr, `no qmpx serve answers for VM 'vm-c' on host '${HOST}'`);
  assert.match(named.stderr, 'nothing was run');
  const unnamed = await runQmpx(['exec', `${nats.url}/vm-c`, 'query-status']);
  assert.is(unnamed.code, 2);
  assert.match(unnamed.stderr, "no qmpx serve answers for VM 'vm-c': no host has it");
});

test('no reply within --timeout: "outcome unknown" and its own exit status; QEMU ran the command later', async () => {
  const a = vms[0]!;
  assert.is(await status(a), 'prelaunch');
  // A stopped QEMU process reads nothing: the serve sends `cont`, no reply comes back in time.
  a.qemu.process.kill('SIGSTOP');
  const resumed = waitForEvent(a.direct, 'RESUME', { timeoutMs: 15_000 });
  let result;
  try {
    result = await runQmpx(['exec', `${nats.url}/${HOST}/vm-a`, '--timeout', '1', 'cont']);
  } finally {
    a.qemu.process.kill('SIGCONT');
  }
  assert.is(result.code, EXIT_OUTCOME_UNKNOWN);
  assert.is(EXIT_OUTCOME_UNKNOWN, 3);
  assert.match(result.stderr, 'outcome unknown');
  assert.not.match(result.stderr, /fail/i);
  assert.is(result.stdout, '');
  // The outcome was indeed not "failed": the command was waiting in QEMU's socket and runs now.
  await resumed;
  assert.is(await status(a), 'running');
});

test.run();
