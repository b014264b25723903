import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ArgumentsRefusedError, connect, QmpError, silentLogger, type Logger, type Monitor, type MonitorOptions } from '../../lib/index.js';
import type { QmpMonitor } from '../../lib/qmp/client.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance; strictQemu: QemuInstance }>('argument validation against real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu({ extraQmpSockets: 1 });
  // QEMU's own policy, to compare qmpx's words with.
  context.strictQemu = await startQemu({ args: ['-compat', 'deprecated-input=reject,unstable-input=reject'] });
});

test.after(async (context) => {
  await context.qemu.stop();
  await context.strictQemu.stop();
});

async function withMonitor<T>(path: string, options: MonitorOptions, body: (monitor: Monitor) => Promise<T>): Promise<T> {
  const monitor = await connect(path, { logger: silentLogger, ...options });
  try {
    return await body(monitor);
  } finally {
    await monitor.close();
  }
}

/** QEMU's own answer to the same arguments, sent unchecked. */
async function qemuDesc(monitor: Monitor, command: string, args: object): Promise<string> {
  const error = await rejectionOf(monitor.execute<unknown>(command, args, { validate: 'off' }));
  assert.instance(error, QmpError);
  return (error as QmpError).desc;
}

const WRONG: [string, object, string][] = [
  ['query-status', { verbose: true }, 'verbose'],
  ['blockdev-add', { 'node-name': 'n0' }, 'driver'],
  ['blockdev-add', { driver: 'qcow3', 'node-name': 'n0' }, 'driver'],
  ['blockdev-add', { driver: 'qcow2', 'node-name': 'n0', file: { driver: 'null-co', size: 'big' } }, 'file.size'],
  ['blockdev-add', { driver: 'null-co', 'node-name': 'n0', discard: 1 }, 'discard'],
  ['object-add', { 'qom-type': 'iothread', id: 'io0', 'poll-max-ns': 'x' }, 'poll-max-ns'],
];

test("validate: 'reject' refuses before sending, naming the member, in QEMU's own words", async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, { validate: 'reject' }, async (monitor) => {
    for (const [command, args, member] of WRONG) {
      const error = await rejectionOf(monitor.execute<unknown>(command, args));
      assert.instance(error, ArgumentsRefusedError, `${command} ${JSON.stringify(args)}`);
      const refused = error as ArgumentsRefusedError;
      assert.is(refused.code, 'ARGUMENTS_REFUSED');
      assert.is(refused.member, member);
      assert.is(refused.desc, await qemuDesc(monitor, command, args), 'the words QEMU uses');
      assert.match(refused.message, `${command}: refused by qmpx before sending, not by QEMU: `);
    }
    assert.equal(await monitor.execute('blockdev-add', { driver: 'null-co', 'node-name': 'valid0' }), {}, 'valid arguments are sent');
  });
});

test('validation is per connection and per call; off by default', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, {}, async (monitor) => {
    assert.instance(await rejectionOf(monitor.execute<unknown>('query-status', { verbose: true })), QmpError, 'off: QEMU answers');
    assert.instance(await rejectionOf(monitor.execute<unknown>('query-status', { verbose: true }, { validate: 'reject' })), ArgumentsRefusedError);
  });
  await withMonitor(qemu.qmpPath, { validate: 'reject' }, async (monitor) => {
    assert.instance(await rejectionOf(monitor.execute<unknown>('query-status', { verbose: true }, { validate: 'off' })), QmpError);
    assert.is((await monitor.execute('query-status')).status, 'prelaunch');
    assert.is(await monitor.execute<unknown>('x-no-such-command').catch((error: QmpError) => error.errorClass), 'CommandNotFound', 'unknown names are left to QEMU');
  });
});

test("validate: 'warn' logs QEMU's words and sends the command anyway", async ({ qemu }) => {
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (_fields, message) => warnings.push(message) };
  await withMonitor(qemu.qmpPath, { validate: 'warn', logger }, async (monitor) => {
    const error = await rejectionOf(monitor.execute<unknown>('query-status', { verbose: true }));
    assert.instance(error, QmpError, 'QEMU answered');
    assert.equal(warnings, ["query-status: QEMU's schema says: Parameter 'verbose' is unexpected (sent anyway)"]);
  });
});

test('compat policy: deprecated and unstable input refused in the words of QEMU -compat ...=reject', async ({ qemu, strictQemu }) => {
  const cases: [string, object][] = [
    ['nbd-server-remove', { name: 'export0' }],
    ['eject', { device: 'cd0' }],
    ['x-query-roms', {}],
    ['migrate-set-capabilities', { capabilities: [{ capability: 'x-colo', state: false }] }],
  ];
  const compat = { deprecatedInput: 'reject', unstableInput: 'reject' } as const;
  await withMonitor(qemu.qmpPath, { compat }, async (monitor) => {
    await withMonitor(strictQemu.qmpPath, {}, async (strict) => {
      for (const [command, args] of cases) {
        const ours = await rejectionOf(monitor.execute<unknown>(command, args));
        assert.instance(ours, ArgumentsRefusedError, command);
        assert.is((ours as ArgumentsRefusedError).desc, await qemuDesc(strict, command, args), command);
      }
    });
  });
  await withMonitor(qemu.qmpPath, { compat: { deprecatedInput: 'accept', unstableInput: 'reject' } }, async (monitor) => {
    assert.instance(await rejectionOf(monitor.execute<unknown>('nbd-server-remove', { name: 'export0' })), QmpError, 'deprecated accepted: QEMU answers');
  });
});

test('compiled lazily per command; one compiled schema shared by connections to the same QEMU', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, { validate: 'reject' }, async (first) => {
    await withMonitor(qemu.extraQmpPaths[0]!, { validate: 'reject' }, async (second) => {
      const checks = await (first as QmpMonitor).argumentChecker.schemaChecks();
      assert.is(await (second as QmpMonitor).argumentChecker.schemaChecks(), checks, 'cached by the hash of the schema');
      assert.is(checks.hash.length, 64);
      assert.is(checks.isCompiled('blockdev-del'), false);
      await first.execute('blockdev-del', { 'node-name': 'absent' }).catch((error: QmpError) => assert.is(error.errorClass, 'GenericError'));
      assert.is(checks.isCompiled('blockdev-del'), true);
      assert.is(checks.isCompiled('blockdev-create'), false, 'other commands are not compiled');
    });
  });
});

test.run();
