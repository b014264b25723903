/**
 * Named-event callbacks against the real QEMU's STOP, RESUME and RESET.
 * QEMU sends the events a command causes before its reply (docs/monitor-facts.md §2) and
 * qmpx delivers them before that reply settles, so after `await
 * execute('stop')` the STOP callbacks have already run: no waiting needed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConnectionClosedError, connect, UnsupportedError, type Logger, type Monitor, type QmpEvent } from '../../lib/index.js';
import {
  deregisterMonitorEvent,
  InvalidArgumentError,
  MonitorEventFlags,
  registerMonitorEvent,
  type MonitorEventCallback,
} from '../../lib/passthrough/index.js';
import { rawJson, startFakePeer } from '../helpers/fake-peer.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';

const test = suite<{ qemu: QemuInstance }>('pass-through event callbacks');

test.before(async (context) => {
  context.qemu = await startQemu({ extraQmpSockets: 1 });
});

test.after(async (context) => {
  await context.qemu?.stop();
});

const { REGEX, NOCASE } = MonitorEventFlags;

interface ErrorLine {
  fields: Record<string, unknown>;
  message: string;
}

/** A logger that keeps error lines and lets a test wait for the next one (with a deadline). */
function errorRecorder(): { logger: Logger; errors: ErrorLine[]; nextError(timeoutMs?: number): Promise<ErrorLine> } {
  const errors: ErrorLine[] = [];
  const waiters: ((line: ErrorLine) => void)[] = [];
  const noop = (): void => {};
  const logger: Logger = {
    debug: noop,
    info: noop,
    warn: noop,
    error: (fields, message) => {
      const line = { fields: fields as Record<string, unknown>, message };
      errors.push(line);
      for (const waiter of waiters.splice(0)) waiter(line);
    },
  };
  const nextError = (timeoutMs = 5000): Promise<ErrorLine> => {
    const next = new Promise<ErrorLine>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no error logged within ${timeoutMs} ms`)), timeoutMs);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
    // A test that fails before awaiting it must not also crash on an unhandled rejection.
    next.catch(() => {});
    return next;
  };
  return { logger, errors, nextError };
}

async function withMonitor(path: string, body: (monitor: Monitor, log: ReturnType<typeof errorRecorder>) => Promise<void>): Promise<void> {
  const log = errorRecorder();
  const monitor = await connect(path, { logger: log.logger });
  try {
    // Every test starts paused (no event when it already is), whatever the one before left.
    await monitor.execute('stop');
    await body(monitor, log);
  } finally {
    await monitor.close();
  }
}

type Call = [event: string, seconds: number, micros: number, details: string | null];

function recorder(): { calls: Call[]; callback: MonitorEventCallback } {
  const calls: Call[] = [];
  return { calls, callback: (event, seconds, micros, details) => void calls.push([event, seconds, micros, details]) };
}

function thrown(body: () => unknown): Error {
  try {
    body();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an exception');
}

test("each filter gets exactly its events, with QEMU's timestamps and compact details", async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const seen: QmpEvent[] = [];
    const subscription = monitor.events$.subscribe((event) => seen.push(event));
    const filters: [string | null, number, string[]][] = [
      [null, 0, ['RESUME', 'STOP', 'RESET', 'RESUME']],
      ['STOP', 0, ['STOP']],
      ['stop', 0, []],
      ['stop', NOCASE, ['STOP']],
      ['ST.*', REGEX, ['STOP']],
      ['E', REGEX, ['RESUME', 'RESET', 'RESUME']],
      ['^res', REGEX | NOCASE, ['RESUME', 'RESET', 'RESUME']],
      ['^res', REGEX, []],
      ['s.', NOCASE, []],
    ];
    const recorders = filters.map(([event, flags]) => {
      const { calls, callback } = recorder();
      return { id: registerMonitorEvent(monitor, event, callback, flags), calls };
    });
    assert.equal(
      recorders.map(({ id }) => id),
      filters.map((_, index) => index + 1),
      'ids count from 1',
    );
    for (const command of ['cont', 'stop', 'system_reset', 'cont']) await monitor.execute(command);
    subscription.unsubscribe();
    assert.equal(seen.map((event) => event.event), ['RESUME', 'STOP', 'RESET', 'RESUME']);
    const expectedCall = (event: QmpEvent): Call => [
      event.event,
      event.timestamp.seconds,
      event.timestamp.microseconds,
      event.data === undefined ? null : JSON.stringify(event.data),
    ];
    filters.forEach(([event, flags, names], index) => {
      const expected = seen.filter((qmpEvent) => names.includes(qmpEvent.event)).map(expectedCall);
      assert.equal(recorders[index]!.calls, expected, `${String(event)} flags ${flags}`);
    });
    assert.equal(recorders[0]!.calls[1]![3], null, 'STOP has no data: details is null');
    assert.is(recorders[0]!.calls[2]![3], '{"guest":false,"reason":"host-qmp-system-reset"}');
  });
});

test('ids count from 1 on every monitor', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (first) => {
    await withMonitor(qemu.extraQmpPaths[0]!, async (second) => {
      const callback: MonitorEventCallback = () => {};
      assert.is(registerMonitorEvent(first, null, callback), 1);
      assert.is(registerMonitorEvent(second, null, callback), 1);
      assert.is(registerMonitorEvent(first, 'STOP', callback), 2);
    });
  });
});

test('an event that caused a reply is delivered before that reply settles', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const { calls, callback } = recorder();
    registerMonitorEvent(monitor, 'STOP', callback);
    await monitor.execute('cont');
    const stopped = monitor.execute('stop').then(() => calls.length);
    assert.is(await stopped, 1);
  });
});

test('the same (event, flags, callback) twice: event callback already tracked; anything else differing is fine', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const callback: MonitorEventCallback = () => {};
    assert.is(registerMonitorEvent(monitor, 'STOP', callback), 1);
    const error = thrown(() => registerMonitorEvent(monitor, 'STOP', callback));
    assert.instance(error, InvalidArgumentError);
    assert.is(error.message, 'event callback already tracked');
    assert.is(registerMonitorEvent(monitor, 'STOP', callback, NOCASE), 2);
    assert.is(registerMonitorEvent(monitor, 'STOP', () => {}), 3);
    assert.is(registerMonitorEvent(monitor, null, callback), 4);
    assert.is(thrown(() => registerMonitorEvent(monitor, null, callback)).message, 'event callback already tracked');
    deregisterMonitorEvent(monitor, 1);
    assert.is(registerMonitorEvent(monitor, 'STOP', callback), 5, 'free to register again once deregistered');
  });
});

test('an invalid regex and unknown flags fail at registration, and use up no id', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const badRegex = thrown(() => registerMonitorEvent(monitor, '(', () => {}, REGEX));
    assert.instance(badRegex, InvalidArgumentError);
    assert.match(badRegex.message, /^failed to compile regex '\(': Invalid regular expression/);
    const badFlags = thrown(() => registerMonitorEvent(monitor, 'STOP', () => {}, 4));
    assert.instance(badFlags, UnsupportedError);
    assert.is(badFlags.message, 'unsupported flags (0x4)');
    assert.instance(thrown(() => registerMonitorEvent(monitor, 'STOP', 'nope' as unknown as MonitorEventCallback)), InvalidArgumentError);
    assert.is(registerMonitorEvent(monitor, '(', () => {}), 1, 'without REGEX, "(" is just a name');
  });
});

test('deregistration: the callback stops at once; unknown or repeated ids fail', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const { calls, callback } = recorder();
    const id = registerMonitorEvent(monitor, null, callback);
    await monitor.execute('cont');
    deregisterMonitorEvent(monitor, id);
    await monitor.execute('stop');
    assert.equal(calls.map(([event]) => event), ['RESUME']);
    const again = thrown(() => deregisterMonitorEvent(monitor, id));
    assert.instance(again, InvalidArgumentError);
    assert.is(again.message, `event callback id ${id} not registered`);
    assert.is(thrown(() => deregisterMonitorEvent(monitor, 99)).message, 'event callback id 99 not registered');
  });
  await withMonitor(qemu.qmpPath, async (monitor) => {
    assert.is(thrown(() => deregisterMonitorEvent(monitor, 1)).message, 'event callback id 1 not registered', 'a monitor never registered on');
  });
});

test('a callback that deregisters a later one stops it for the event being delivered', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const later = recorder();
    let laterId = 0;
    registerMonitorEvent(monitor, 'RESUME', () => deregisterMonitorEvent(monitor, laterId));
    laterId = registerMonitorEvent(monitor, null, later.callback);
    await monitor.execute('cont');
    assert.equal(later.calls, []);
  });
});

test('a throwing or rejecting callback is logged on the monitor logger; nothing else notices', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor, log) => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const before = recorder();
      const after = recorder();
      registerMonitorEvent(monitor, null, before.callback);
      const throwingId = registerMonitorEvent(monitor, null, () => {
        throw new Error('callback bug');
      });
      const rejectingId = registerMonitorEvent(monitor, 'STOP', (() => Promise.reject(new Error('async callback bug'))) as unknown as MonitorEventCallback);
      registerMonitorEvent(monitor, null, after.callback);

      const rejectionLogged = log.nextError();
      await monitor.execute('cont');
      assert.equal(log.errors.map((line) => [line.fields.callbackId, line.fields.event]), [[throwingId, 'RESUME']]);
      assert.is((log.errors[0]!.fields.err as { message: string }).message, 'callback bug');
      assert.match(log.errors[0]!.message, /callback failed/);
      await monitor.execute('stop');
      const rejection = await rejectionLogged.then(() => log.errors.find((line) => line.fields.callbackId === rejectingId));
      assert.ok(rejection, 'the rejection was logged');
      assert.is((rejection!.fields.err as { message: string }).message, 'async callback bug');
      assert.equal(before.calls.map(([event]) => event), ['RESUME', 'STOP']);
      assert.equal(after.calls.map(([event]) => event), ['RESUME', 'STOP']);
      assert.equal(await monitor.execute('query-status'), { status: 'paused', singlestep: false, running: false });
      assert.equal(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

test('registrations end when the monitor closes', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: errorRecorder().logger });
  await monitor.execute('stop');
  const { calls, callback } = recorder();
  const id = registerMonitorEvent(monitor, null, callback);
  await monitor.execute('cont');
  await monitor.close();
  assert.instance(thrown(() => registerMonitorEvent(monitor, 'STOP', () => {})), ConnectionClosedError);
  deregisterMonitorEvent(monitor, id);
  assert.is(thrown(() => deregisterMonitorEvent(monitor, id)).message, `event callback id ${id} not registered`);
  assert.equal(calls.map(([event]) => event), ['RESUME']);
});

test('details keep every digit of integers beyond 2^53 (an event only a fake peer can send)', async () => {
  const peer = await startFakePeer();
  peer
    .expect('qmp_capabilities')
    .reply({ return: {} })
    .expect('x-trigger')
    .event('X_BIG', { n: rawJson('18446744073709551615'), f: 0.5, s: 'caf\u00e9' })
    .reply({ return: {} });
  const monitor = await connect(peer.path, { logger: errorRecorder().logger });
  try {
    const { calls, callback } = recorder();
    registerMonitorEvent(monitor, 'X_BIG', callback);
    await monitor.execute('x-trigger');
    assert.is(calls[0]![3], '{"n":18446744073709551615,"f":0.5,"s":"café"}');
    await peer.done();
  } finally {
    await monitor.close();
    await peer.close();
  }
});

test.run();
