/**
 * `qmpx events` as a child process against real QEMU. Each section of
 * fixtures/libvirt-9.0/virsh-qemu-monitor-event.txt (virsh 9.0, VM lab1)
 * is reproduced with the same options and events caused the same way; the
 * output must be the capture's, byte for byte, except for the times, and the
 * times must be the events' own (QEMU stamps an event once for all monitors,
 * so the triggering connection sees the same timestamps).
 *
 * Events are caused through a second QMP socket of the same QEMU. A run is
 * interrupted only after the triggering commands have been answered: the
 * CLI makes one round trip to QEMU on SIGINT, so every event sent before is
 * counted (that is part of what is tested).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type Monitor, type QmpEvent } from '../../lib/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { REPO_ROOT, startQmpx, type CliProcess, type CliResult } from './cli-process.js';

const CAPTURE = readFileSync(join(REPO_ROOT, 'spec/cli/fixtures/libvirt-9.0/virsh-qemu-monitor-event.txt'), 'utf8');
const TIMESTAMP = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\+0000: /gm;

/** The capture's text for one `##### name` section. */
function section(name: string): string {
  const start = CAPTURE.indexOf(`##### ${name}\n`);
  if (start === -1) throw new Error(`no section ${name}`);
  const body = CAPTURE.slice(start + name.length + 7);
  const end = body.indexOf('\n#####');
  return end === -1 ? body.replace(/\n+$/, '\n') : body.slice(0, end + 1).replace(/\n+$/, '\n');
}

/** `text` with QEMU's `at S.U` and libvirt's receive timestamps blanked, to compare everything else exactly. */
function withoutTimes(text: string): string {
  return text.replace(/ at \d+\.\d{6} for/g, ' at S.U for').replace(TIMESTAMP, 'TIME: ');
}

/** A QEMU, a connection on its second QMP socket to cause events, and the events that connection saw. */
interface Bench {
  qemu: QemuInstance;
  trigger: Monitor;
  seen: QmpEvent[];
}

async function bench(options: Parameters<typeof startQemu>[0]): Promise<Bench> {
  const qemu = await startQemu({ extraQmpSockets: 1, ...options });
  const trigger = await connect(qemu.extraQmpPaths[0]!);
  const seen: QmpEvent[] = [];
  trigger.events$.subscribe((event) => seen.push(event));
  return { qemu, trigger, seen };
}

let guestless: Bench;
let pc: Bench;

test.before(async () => {
  // Named lab1 like the captured VM, and running, so stop/cont give STOP/RESUME as in the capture.
  guestless = await bench({ args: ['-name', 'lab1'] });
  await guestless.trigger.execute('cont');
  // i8042 on the pc machine lets the "guest" reset (HMP `o /b 0x64 0xfe`): RESET {"guest":true,...}.
  pc = await bench({ machine: 'pc', args: ['-name', 'lab1'] });
});

test.after(async () => {
  for (const each of [guestless, pc]) {
    await each?.trigger.close();
    await each?.qemu.stop();
  }
});

/** CLI processes of the current test, killed after it whatever happened (QEMU serves one client per socket). */
const running = new Set<CliProcess>();

test.after.each(async () => {
  for (const cli of running) {
    cli.kill('SIGKILL');
    await cli.done;
  }
  running.clear();
});

/** Starts `qmpx events` on the bench's main socket; resolves once it watches. */
async function watch(target: Bench, args: string[]): Promise<CliProcess> {
  const cli = startQmpx(['events', target.qemu.qmpPath, ...args]);
  running.add(cli);
  await cli.waitForStderr(/^qmpx events: watching events of domain '[^']*' on .*\n/m);
  return cli;
}

/** stop, cont, stop, cont: STOP RESUME STOP RESUME, all answered (so all sent) when this resolves. */
async function stopCont(target: Bench): Promise<QmpEvent[]> {
  const from = target.seen.length;
  for (const command of ['stop', 'cont', 'stop', 'cont']) await target.trigger.execute(command);
  return target.seen.slice(from);
}

/** Two host resets and one guest reset, all three delivered to the trigger connection. */
async function threeResets(target: Bench): Promise<QmpEvent[]> {
  const from = target.seen.length;
  await target.trigger.execute('system_reset');
  await target.trigger.execute('system_reset');
  await target.trigger.hmp('o /b 0x64 0xfe');
  // The guest reset is carried out by QEMU's main loop after the HMP reply: wait for its event.
  const deadline = Date.now() + 10_000;
  while (target.seen.length < from + 3) {
    if (Date.now() > deadline) throw new Error(`resets seen: ${JSON.stringify(target.seen.slice(from))}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return target.seen.slice(from);
}

async function interrupt(cli: CliProcess): Promise<CliResult> {
  cli.kill('SIGINT');
  const result = await cli.finish();
  assert.is(result.code, 0, result.stderr);
  return result;
}

/** The `at S.U` times printed, which must be the events' own. */
function printedTimes(stdout: string): string[] {
  return [...stdout.matchAll(/ at (\d+\.\d{6}) for/g)].map((match) => match[1]!);
}

function times(events: readonly QmpEvent[]): string[] {
  return events.map((event) => `${event.timestamp.seconds}.${String(event.timestamp.microseconds).padStart(6, '0')}`);
}

test('ev-loop: --loop --timestamp', async () => {
  const startedAt = Date.now();
  const cli = await watch(guestless, ['--loop', '--timestamp']);
  await stopCont(guestless);
  await cli.waitForStdout(/(^.*event .*\n){4}/m);
  const result = await interrupt(cli);
  const endedAt = Date.now();
  assert.is(withoutTimes(result.stdout), withoutTimes(section('ev-loop')));
  for (const [, time] of result.stdout.matchAll(TIMESTAMP)) {
    const receivedAt = Date.parse(`${time!.replace(' ', 'T')}Z`);
    assert.ok(receivedAt >= startedAt - 1 && receivedAt <= endedAt, `${time} is a UTC receive time`);
  }
});

test('ev-stop: --event STOP --loop', async () => {
  const cli = await watch(guestless, ['--event', 'STOP', '--loop']);
  const events = await stopCont(guestless);
  const result = await interrupt(cli);
  assert.is(withoutTimes(result.stdout), withoutTimes(section('ev-stop')));
  assert.equal(printedTimes(result.stdout), times(events.filter((event) => event.event === 'STOP')));
});

test("ev-regex: --event 'ST.*' --regex --loop --timestamp", async () => {
  const cli = await watch(guestless, ['--event', 'ST.*', '--regex', '--loop', '--timestamp']);
  await stopCont(guestless);
  const result = await interrupt(cli);
  assert.is(withoutTimes(result.stdout), withoutTimes(section('ev-regex')));
});

test('ev-nocase: --event stop --no-case --loop', async () => {
  const cli = await watch(guestless, ['--event', 'stop', '--no-case', '--loop']);
  const events = await stopCont(guestless);
  const result = await interrupt(cli);
  assert.is(withoutTimes(result.stdout), withoutTimes(section('ev-nocase')));
  assert.equal(printedTimes(result.stdout), times(events.filter((event) => event.event === 'STOP')));
});

test('ev-case-miss: --event stop --loop matches nothing', async () => {
  const cli = await watch(guestless, ['--event', 'stop', '--loop']);
  await stopCont(guestless);
  const result = await interrupt(cli);
  assert.is(result.stdout, section('ev-case-miss'));
});

test('ev-oneshot: without --loop the first matching event ends the run', async () => {
  const cli = await watch(guestless, []);
  const events = await stopCont(guestless);
  const result = await cli.finish();
  assert.is(result.code, 0);
  assert.is(withoutTimes(result.stdout), withoutTimes(section('ev-oneshot')));
  assert.equal(printedTimes(result.stdout), times(events.slice(0, 1)));
});

test('ev-plain: --loop, host and guest resets with their data', async () => {
  const cli = await watch(pc, ['--loop']);
  const events = await threeResets(pc);
  await cli.waitForStdout(/(^event .*\n){3}/m);
  const result = await interrupt(cli);
  assert.is(withoutTimes(result.stdout), withoutTimes(section('ev-plain')));
  assert.equal(printedTimes(result.stdout), times(events));
});

test('ev-pretty: --pretty --loop', async () => {
  const cli = await watch(pc, ['--pretty', '--loop']);
  await threeResets(pc);
  await cli.waitForStdout(/(event [^]*?\n\n){3}/);
  const result = await interrupt(cli);
  assert.is(withoutTimes(result.stdout), withoutTimes(section('ev-pretty')));
});

test('ev-timeout: --timeout S --event NOPE: nothing matched, exit 1 as virsh', async () => {
  const cli = await watch(guestless, ['--timeout', '0.5', '--event', 'NOPE']);
  await stopCont(guestless);
  const result = await cli.finish();
  assert.is(result.code, 1);
  assert.is(result.stdout, section('ev-timeout'));
});

test('--loop --timeout S with events matched: exit 0', async () => {
  const cli = await watch(guestless, ['--loop', '--timeout', '1', '--event', 'STOP']);
  await stopCont(guestless);
  const result = await cli.finish();
  assert.is(result.code, 0);
  assert.match(result.stdout, /event loop timed out\nevents received: 2\n$/);
});

test('--json: one line per event as QEMU sent it; closing lines on stderr', async () => {
  const cli = await watch(guestless, ['--loop', '--json']);
  const events = await stopCont(guestless);
  const result = await interrupt(cli);
  const lines = result.stdout.split('\n').slice(0, -1);
  assert.equal(lines.map((line) => JSON.parse(line) as unknown), events);
  assert.ok(lines.every((line) => /^\{"timestamp":\{"seconds":\d+,"microseconds":\d+\},"event":"[A-Z_]+"\}$/.test(line)), result.stdout);
  assert.match(result.stderr, /event loop interrupted\nevents received: 4\n$/);
});

test('--json keeps event data', async () => {
  const cli = await watch(pc, ['--loop', '--json', '--event', 'RESET']);
  const events = await threeResets(pc);
  await cli.waitForStdout(/(^\{.*\n){3}/m);
  const result = await interrupt(cli);
  assert.equal(result.stdout.split('\n').slice(0, -1).map((line) => JSON.parse(line) as unknown), events);
  assert.match(result.stdout, /^\{"timestamp":\{[^}]*\},"event":"RESET","data":\{"guest":false,"reason":"host-qmp-system-reset"\}\}\n/);
});

test('an unnamed VM is called by its socket name; QEMU quitting ends the run with exit 0', async () => {
  const unnamed = await bench({});
  try {
    const cli = startQmpx(['events', unnamed.qemu.qmpPath, '--loop']);
    running.add(cli);
    await cli.waitForStderr(/watching events of domain 'qmp'/);
    await unnamed.trigger.execute('quit').catch(() => undefined);
    const result = await cli.finish();
    assert.is(result.code, 0);
    assert.match(result.stdout, /^event SHUTDOWN at \d+\.\d{6} for domain 'qmp': \{"guest":false,"reason":"host-qmp-quit"\}\nevents received: 1\n$/);
    assert.match(result.stderr, /the monitor closed the connection/);
  } finally {
    await unnamed.trigger.close();
    await unnamed.qemu.stop();
  }
});

test('an invalid regex and an HMP socket are refused with exit 1', async () => {
  const regex = startQmpx(['events', guestless.qemu.qmpPath, '--event', '(', '--regex']);
  running.add(regex);
  const badRegex = await regex.finish();
  assert.is(badRegex.code, 1);
  assert.match(badRegex.stderr, /^qmpx events: error: .*\(/m);
  const hmp = startQmpx(['events', guestless.qemu.hmpPath]);
  running.add(hmp);
  const onHmp = await hmp.finish();
  assert.is(onHmp.code, 1);
  assert.match(onHmp.stderr, /is a HMP monitor, which delivers no events/);
});

test.run();
