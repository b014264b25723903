import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, QmpError, silentLogger, type Monitor } from '../../lib/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

interface Context {
  qemu: QemuInstance;
  qmp: Monitor;
  hmp: Monitor;
}

const test = suite<Context>('execute() on HMP returns what QMP returns on the same QEMU');

test.before(async (context) => {
  context.qemu = await startQemu();
  context.qmp = await connect(context.qemu.qmpPath, { logger: silentLogger });
  context.hmp = await connect(context.qemu.hmpPath, { logger: silentLogger });
  assert.is(context.qmp.protocol, 'qmp');
  assert.is(context.hmp.protocol, 'hmp');
});

test.after(async (context) => {
  await context.hmp.close();
  await context.qmp.close();
  await context.qemu.stop();
});

/** Deep-equal and equal as JSON text: same members in the same order. */
async function assertSameResult(context: Context, command: string, args?: object): Promise<unknown> {
  const viaQmp = await context.qmp.execute(command, args);
  const viaHmp = await context.hmp.execute(command, args);
  assert.equal(viaHmp, viaQmp, `${command} via HMP`);
  assert.is(JSON.stringify(viaHmp), JSON.stringify(viaQmp), `${command}: member order`);
  return viaHmp;
}

async function assertSameError(context: Context, command: string, args: object): Promise<QmpError> {
  const viaQmp = await rejectionOf(context.qmp.execute(command, args));
  const viaHmp = await rejectionOf(context.hmp.execute(command, args));
  assert.instance(viaQmp, QmpError);
  assert.instance(viaHmp, QmpError);
  const [qmpError, hmpError] = [viaQmp as QmpError, viaHmp as QmpError];
  assert.equal([hmpError.errorClass, hmpError.desc, hmpError.command], [qmpError.errorClass, qmpError.desc, qmpError.command]);
  return hmpError;
}

test('query-status through every run state the commands reach, driven from either side', async (context) => {
  const prelaunch = { status: 'prelaunch', singlestep: false, running: false };
  const paused = { status: 'paused', singlestep: false, running: false };
  const running = { status: 'running', singlestep: false, running: true };
  const steps: [Monitor, string, object][] = [
    [context.hmp, 'stop', prelaunch], // stop leaves prelaunch as it is
    [context.hmp, 'cont', running],
    [context.hmp, 'stop', paused],
    [context.qmp, 'cont', running],
    [context.qmp, 'stop', paused],
    [context.hmp, 'cont', running],
  ];
  assert.equal(await assertSameResult(context, 'query-status'), prelaunch);
  for (const [monitor, command, expected] of steps) {
    assert.equal(await monitor.execute(command), {}, `${command} via ${monitor.protocol}`);
    assert.equal(await assertSameResult(context, 'query-status'), expected, `after ${command} via ${monitor.protocol}`);
  }
});

test('stop, cont, system_reset and system_powerdown return {} on both', async (context) => {
  for (const command of ['stop', 'cont', 'system_reset', 'system_powerdown']) await assertSameResult(context, command);
  assert.equal((await context.hmp.execute<{ status: string }>('query-status')).status, 'running');
});

test('query-version, split at the banner\'s version', async (context) => {
  const version = await assertSameResult(context, 'query-version');
  assert.equal((version as { qemu: unknown }).qemu, { micro: 22, minor: 2, major: 7 });
});

test('query-name without a name is {}', async (context) => {
  assert.equal(await assertSameResult(context, 'query-name'), {});
});

test('human-monitor-command keeps QEMU\'s CRLF on both, unlike hmp()', async (context) => {
  const output = await assertSameResult(context, 'human-monitor-command', { 'command-line': 'info mtree' });
  assert.match(output as string, /^address-space: .*\r\n/);
  assert.is(await context.hmp.hmp('info mtree'), (output as string).replaceAll('\r\n', '\n'));
});

test('bad arguments fail with QMP\'s own error, before anything is sent', async (context) => {
  await assertSameError(context, 'stop', { foo: 1 });
  await assertSameError(context, 'query-status', { verbose: true });
  await assertSameError(context, 'human-monitor-command', {});
  await assertSameError(context, 'human-monitor-command', { 'command-line': 42 });
  await assertSameError(context, 'human-monitor-command', { 'command-line': 'info status', extra: 1 });
});

test('query-name with -name', async () => {
  const qemu = await startQemu({ args: ['-name', 'lab one'] });
  const context = { qemu, qmp: await connect(qemu.qmpPath, { logger: silentLogger }), hmp: await connect(qemu.hmpPath, { logger: silentLogger }) };
  try {
    assert.equal(await assertSameResult(context, 'query-name'), { name: 'lab one' });
  } finally {
    await context.hmp.close();
    await context.qmp.close();
    await qemu.stop();
  }
});

test.run();
