/**
 * Taint, flags and request origin of pass-through commands, against the
 * real QEMU.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, UnsupportedError, type Logger, type Monitor } from '../../lib/index.js';
import { CUSTOM_MONITOR_TAINT, isTainted, MonitorCommandFlags, monitorCommand } from '../../lib/passthrough/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance }>('pass-through taint, flags and origin');

test.before(async (context) => {
  context.qemu = await startQemu();
});

test.after(async (context) => {
  await context.qemu?.stop();
});

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const record = (level: string) => (fields: object, message: string) => {
    lines.push({ level, fields: fields as Record<string, unknown>, message });
  };
  return {
    lines,
    logger: { debug: () => {}, info: record('info'), warn: record('warn'), error: record('error'), isLevelEnabled: (level) => level !== 'debug' },
  };
}

async function withMonitor(path: string, body: (monitor: Monitor, lines: LogLine[]) => Promise<void>): Promise<void> {
  const { logger, lines } = recordingLogger();
  const monitor = await connect(path, { logger });
  try {
    await body(monitor, lines);
  } finally {
    await monitor.close();
  }
}

const taintLines = (lines: LogLine[]): LogLine[] => lines.filter((line) => line.fields.taint === CUSTOM_MONITOR_TAINT);

test("the first pass-through taints the monitor, logged once as a warning on the monitor's logger", async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor, lines) => {
    await monitor.execute('query-status');
    assert.is(isTainted(monitor), false, "the library's own commands do not taint");
    assert.is(await monitorCommand(monitor, '{"execute":"query-status"}'), '{"return": {"status": "prelaunch", "singlestep": false, "running": false}}');
    assert.is(isTainted(monitor), true);
    await monitorCommand(monitor, 'info status', MonitorCommandFlags.HMP);
    await monitorCommand(monitor, '[1]');
    await rejectionOf(monitorCommand(monitor, 'not json'));
    const taints = taintLines(lines);
    assert.is(taints.length, 1, JSON.stringify(lines));
    assert.is(taints[0]!.level, 'warn');
    assert.is(taints[0]!.fields.monitor, qemu.qmpPath);
    assert.match(taints[0]!.message, /tainted: custom-monitor/);
  });
});

test('taint is per monitor: a new connection to the same QEMU starts clean; HMP monitors are tainted too', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor, lines) => {
    assert.is(isTainted(monitor), false);
    assert.is(taintLines(lines).length, 0);
  });
  await withMonitor(qemu.hmpPath, async (monitor, lines) => {
    assert.is(monitor.protocol, 'hmp');
    await monitorCommand(monitor, 'info name', MonitorCommandFlags.HMP);
    assert.is(isTainted(monitor), true);
    assert.is(taintLines(lines).length, 1);
  });
});

test('unknown flag bits reject with unsupported flags (0x…), before anything else and without tainting', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor, lines) => {
    const cases: [number, string][] = [
      [2, 'unsupported flags (0x2)'],
      [3, 'unsupported flags (0x2)'],
      [0x80000001, 'unsupported flags (0x80000000)'],
      [0xfffffffe, 'unsupported flags (0xfffffffe)'],
      [-1, 'unsupported flags (-1): flags must be an unsigned 32-bit integer'],
      [1.5, 'unsupported flags (1.5): flags must be an unsigned 32-bit integer'],
    ];
    for (const [flags, message] of cases) {
      const error = await rejectionOf(monitorCommand(monitor, 'not even json', flags));
      assert.instance(error, UnsupportedError);
      assert.is(error.message, message);
    }
    assert.is(isTainted(monitor), false);
    assert.is(taintLines(lines).length, 0);
  });
});

/** The monitor, with every send() and execute() call's options recorded. */
function spyOn(monitor: Monitor): { spy: Monitor; calls: { method: string; command: unknown; options: unknown }[] } {
  const calls: { method: string; command: unknown; options: unknown }[] = [];
  const spy = new Proxy(monitor, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      // The raw command path is the monitor itself on qmpx's monitors: spy on it too.
      if (property === 'raw') return value === target ? spy : value;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (property === 'send' || property === 'execute') {
        return (...args: unknown[]) => {
          calls.push({ method: property, command: args[0], options: args[2] });
          return method.apply(target, args);
        };
      }
      return method.bind(target);
    },
  });
  return { spy, calls };
}

test('every request a pass-through call makes records its origin: passthrough', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const { spy, calls } = spyOn(monitor);
    await monitorCommand(spy, '{"execute":"query-status","id":1}');
    await monitorCommand(spy, 'info status', MonitorCommandFlags.HMP);
    await monitorCommand(spy, '{"exec-oob":"query-yank"}');
    assert.equal(
      calls.map(({ method, command, options }) => [method, command, (options as { origin?: unknown }).origin]),
      [
        ['send', 'query-status', { kind: 'passthrough' }],
        ['execute', 'human-monitor-command', { kind: 'passthrough' }],
        ['send', 'query-yank', { kind: 'passthrough' }],
      ],
    );
    assert.is((calls[2]!.options as { oob?: boolean }).oob, true);
  });
  await withMonitor(qemu.hmpPath, async (monitor) => {
    const { spy, calls } = spyOn(monitor);
    await monitorCommand(spy, '{"execute":"query-status"}');
    assert.equal(calls.map(({ method, command, options }) => [method, command, (options as { origin?: unknown }).origin]), [
      ['execute', 'query-status', { kind: 'passthrough' }],
    ]);
  });
});

test.run();
