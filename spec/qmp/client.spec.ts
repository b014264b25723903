import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { firstValueFrom, filter, toArray, takeWhile } from 'rxjs';
import {
  connect,
  ConnectionClosedError,
  GreetingTimeoutError,
  QmpError,
  UnsupportedError,
  silentLogger,
  type Monitor,
} from '../../lib/index.js';
import type { QmpMonitor } from '../../lib/qmp/client.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance }>('qmp client against real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu({ extraQmpSockets: 1 });
});

test.after(async (context) => {
  await context.qemu.stop();
});

async function withMonitor<T>(path: string, body: (monitor: Monitor) => Promise<T>, oob = true): Promise<T> {
  const monitor = await connect(path, { protocol: 'qmp', oob, logger: silentLogger });
  try {
    return await body(monitor);
  } finally {
    await monitor.close();
  }
}

test('the Monitor itself says its state, label, logger and pending count, and offers the raw and relay paths typed', async ({ qemu }) => {
  const monitor: Monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    assert.is(monitor.state, 'ready');
    assert.is(monitor.label, qemu.qmpPath);
    assert.is(monitor.logger, silentLogger);
    assert.is(monitor.banner, null);
    const pending = monitor.execute('query-status');
    assert.is(monitor.pendingCount, 1);
    await pending;
    assert.is(monitor.pendingCount, 0);
    const reply = await monitor.raw!.send('query-name', undefined);
    assert.is(reply.kind, 'return');
    assert.ok(monitor.relay?.greetingText?.startsWith('{"QMP":'), 'the greeting as QEMU sent it');
  } finally {
    await monitor.close();
  }
  assert.is(monitor.state, 'closed');
});

test('greets and negotiates oob when QEMU offers it', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    assert.is(monitor.protocol, 'qmp');
    assert.equal(monitor.greeting?.QMP.version.qemu, { major: 7, minor: 2, micro: 22 });
    assert.equal(monitor.greeting?.QMP.capabilities, ['oob']);
    assert.equal(monitor.capabilities, ['oob']);
    assert.is(await firstValueFrom(monitor.state$), 'ready');
    const yank = await monitor.execute<unknown[]>('query-yank', undefined, { oob: true });
    assert.ok(Array.isArray(yank), 'exec-oob query-yank returns the yank instance list');
  });
});

test('oob: false negotiates no capabilities; exec-oob is refused before sending', async ({ qemu }) => {
  await withMonitor(
    qemu.qmpPath,
    async (monitor) => {
      assert.equal(monitor.capabilities, []);
      const error = await rejectionOf(monitor.execute('query-yank', undefined, { oob: true }));
      assert.instance(error, UnsupportedError);
      assert.match(error.message, /out-of-band/);
      assert.is((monitor as QmpMonitor).pendingCount, 0);
      assert.equal(await monitor.execute('query-status'), { status: 'prelaunch', singlestep: false, running: false });
    },
    false,
  );
});

test('1,000 pipelined commands from 50 concurrent callers: each reply to its caller, in per-caller order', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const callers = Array.from({ length: 50 }, async (_, caller) => {
      const settledOrder: number[] = [];
      const requests = Array.from({ length: 20 }, (_, index) => {
        // Unknown commands give replies that name the command: proof the reply is this caller's.
        const name = `no-such-${caller}-${index}`;
        const command = index % 2 === 0 ? 'query-status' : name;
        // One then() with both handlers: the settle order observed is the replies' order.
        return monitor.execute<{ status: string }>(command).then(
          (reply) => {
            settledOrder.push(index);
            assert.is(reply.status, 'prelaunch');
          },
          (error: QmpError) => {
            settledOrder.push(index);
            assert.instance(error, QmpError);
            assert.is(error.desc, `The command ${name} has not been found`);
            assert.is(error.command, name);
          },
        );
      });
      await Promise.all(requests);
      assert.equal(settledOrder, [...Array(20).keys()], `caller ${caller} settled out of order`);
    });
    await Promise.all(callers);
    assert.is((monitor as QmpMonitor).pendingCount, 0);
  });
});

test('unknown command → QmpError CommandNotFound; bad arguments → GenericError', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const unknown = (await rejectionOf(monitor.execute('frobnicate'))) as QmpError;
    assert.instance(unknown, QmpError);
    assert.is(unknown.name, 'QmpError');
    assert.is(unknown.errorClass, 'CommandNotFound');
    assert.is(unknown.desc, 'The command frobnicate has not been found');
    const badArgument = (await rejectionOf(monitor.execute<unknown>('query-status', { foo: 1 }))) as QmpError;
    assert.is(badArgument.errorClass, 'GenericError');
    assert.is(badArgument.desc, "Parameter 'foo' is unexpected");
    const badType = (await rejectionOf(monitor.execute<unknown>('human-monitor-command', { 'command-line': 42 }))) as QmpError;
    assert.is(badType.desc, "Invalid parameter type for 'command-line', expected: string");
    const notObject = await rejectionOf(monitor.execute<unknown>('query-status', [1] as unknown as object));
    assert.instance(notObject, UnsupportedError);
  });
});

test('events caused by a command are emitted before its reply settles', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const order: string[] = [];
    const subscription = monitor.events$.subscribe((event) => order.push(`event ${event.event}`));
    await monitor.execute('cont').then(() => order.push('reply cont'));
    await monitor.execute('stop').then(() => order.push('reply stop'));
    await monitor.execute('system_reset').then(() => order.push('reply system_reset'));
    subscription.unsubscribe();
    assert.equal(order, ['event RESUME', 'reply cont', 'event STOP', 'reply stop', 'event RESET', 'reply system_reset']);
  });
});

test('sendWithCallback: replies and events handed over in wire order, as they are read; a refusal comes after the call', async ({ qemu }) => {
  await withMonitor(
    qemu.qmpPath,
    async (monitor) => {
      const qmp = monitor as QmpMonitor;
      const order: string[] = [];
      const subscription = qmp.eventFrames$.subscribe((frame) => order.push(`event ${frame.event.event}`));
      const settled = new Promise<void>((resolve) => {
        let left = 3;
        for (const command of ['cont', 'stop', 'query-status']) {
          qmp.sendWithCallback(command, undefined, {}, (outcome) => {
            order.push(outcome.ok ? `${outcome.reply.kind} ${command}` : `failed ${command}`);
            if (--left === 0) resolve();
          });
        }
      });
      await settled;
      subscription.unsubscribe();
      assert.equal(order, ['event RESUME', 'return cont', 'event STOP', 'return stop', 'return query-status']);

      const refusals: string[] = [];
      qmp.sendWithCallback('query-yank', undefined, { oob: true }, (outcome) => refusals.push(outcome.ok ? 'sent' : outcome.error.name));
      assert.equal(refusals, [], 'not reported from inside the call');
      await Promise.resolve();
      assert.equal(refusals, ['UnsupportedError']);
      assert.is(qmp.pendingCount, 0);
    },
    false,
  );
});

test('events carry data and the wall-clock timestamp', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const reset = firstValueFrom(monitor.events$.pipe(filter((event) => event.event === 'RESET')));
    await monitor.execute('system_reset');
    const event = await reset;
    assert.equal(event.data, { guest: false, reason: 'host-qmp-system-reset' });
    assert.ok(Number.isInteger(event.timestamp.seconds) && event.timestamp.seconds > 1_600_000_000);
    assert.ok(event.timestamp.microseconds >= 0 && event.timestamp.microseconds < 1_000_000);
  });
});

test('query-qmp-schema (about 207 KB on one line) is framed and parsed', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    const schema = await monitor.execute<Array<{ name: string; 'meta-type': string }>>('query-qmp-schema');
    assert.is(schema.length, 1051);
    assert.is(schema.filter((entry) => entry['meta-type'] === 'event').length, 52);
  });
});

test('a second client on an occupied monitor gets GreetingTimeoutError', async ({ qemu }) => {
  await withMonitor(qemu.extraQmpPaths[0]!, async () => {
    const error = await rejectionOf(connect(qemu.extraQmpPaths[0]!, { greetingTimeoutMs: 300, logger: silentLogger }));
    assert.instance(error, GreetingTimeoutError);
    assert.match(error.message, /another client may be holding the monitor/);
  });
});

test('hmp() on a QMP monitor goes through human-monitor-command', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    assert.match(await monitor.hmp('info version'), /^7\.2\.22/);
    assert.is(await monitor.hmp('frobnicate'), "unknown command: 'frobnicate'\n", 'CRLF normalised to LF, as on a raw HMP socket');
    const error = await rejectionOf(monitor.hmp('frobnicate', { throwOnError: true }));
    assert.is(error.name, 'HmpError');
  });
});

test('integers beyond 2^53 come back as bigint and bigint arguments go out exactly', async ({ qemu }) => {
  await withMonitor(qemu.qmpPath, async (monitor) => {
    // A throttle group stores x-iops-size as a 64-bit integer: 2^53 + 1 must survive both ways.
    await monitor.execute('object-add', { 'qom-type': 'throttle-group', id: 'tg-big', 'x-iops-total': 100, 'x-iops-size': 9007199254740993n });
    const value = await monitor.execute('qom-get', { path: '/objects/tg-big', property: 'x-iops-size' });
    assert.is(value, 9007199254740993n);
    const small = await monitor.execute('qom-get', { path: '/objects/tg-big', property: 'x-iops-total' });
    assert.is(small, 100);
    await monitor.execute('object-del', { id: 'tg-big' });
  });
});

test.run();

const lifecycle = suite('qmp client lifecycle against real QEMU');

lifecycle('quit: SHUTDOWN, the reply, then a clean expected close with nothing pending', async () => {
  const qemu = await startQemu({ hmp: false });
  try {
    const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
    const states = firstValueFrom(monitor.state$.pipe(toArray()));
    const events = firstValueFrom(monitor.events$.pipe(toArray()));
    assert.equal(await monitor.execute('quit'), {});
    assert.equal(await monitor.closed, { expected: true });
    assert.equal(await states, ['ready', 'closed']);
    assert.equal((await events).map((event) => event.event), ['SHUTDOWN']);
    assert.is((monitor as QmpMonitor).pendingCount, 0);
    const late = await rejectionOf(monitor.execute('query-status'));
    assert.instance(late, ConnectionClosedError);
    await monitor.close();
    await monitor.close();
    assert.equal(await qemu.waitForExit(), { code: 0, signal: null });
  } finally {
    await qemu.stop();
  }
});

lifecycle('SIGTERM to QEMU: SHUTDOWN host-signal and an expected close', async () => {
  const qemu = await startQemu({ hmp: false });
  try {
    const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
    const shutdown = firstValueFrom(monitor.events$.pipe(filter((event) => event.event === 'SHUTDOWN')));
    process.kill(qemu.pid, 'SIGTERM');
    assert.equal((await shutdown).data, { guest: false, reason: 'host-signal' });
    assert.equal(await monitor.closed, { expected: true });
  } finally {
    await qemu.stop();
  }
});

lifecycle('SIGKILL mid-pipeline: every pending request rejects with ConnectionClosedError', async () => {
  const qemu = await startQemu({ hmp: false });
  try {
    const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
    const outcomes = Array.from({ length: 1000 }, () =>
      monitor.execute('query-status').then(
        () => 'ok' as const,
        (error: unknown) => error,
      ),
    );
    await outcomes[0];
    process.kill(qemu.pid, 'SIGKILL');
    const settled = await Promise.all(outcomes);
    const failures = settled.filter((outcome) => outcome !== 'ok');
    assert.ok(failures.length > 0, 'the kill landed before every reply');
    for (const failure of failures) assert.instance(failure, ConnectionClosedError);
    const firstFailure = settled.findIndex((outcome) => outcome !== 'ok');
    assert.ok(settled.slice(firstFailure).every((outcome) => outcome !== 'ok'), 'replies settle in order: no success after a loss');
    const info = await monitor.closed;
    assert.is(info.expected, false);
    assert.is((monitor as QmpMonitor).pendingCount, 0);
  } finally {
    await qemu.stop();
  }
});

lifecycle('a pretty=on monitor (multi-line JSON) works', async () => {
  const qemu = await startQemu({ pretty: true, hmp: false });
  try {
    await withMonitor(qemu.qmpPath, async (monitor) => {
      assert.equal(monitor.capabilities, ['oob']);
      const order: string[] = [];
      monitor.events$.subscribe((event) => order.push(event.event));
      await monitor.execute('cont');
      assert.equal(order, ['RESUME']);
      const schema = await monitor.execute<unknown[]>('query-qmp-schema');
      assert.is(schema.length, 1051);
    });
  } finally {
    await qemu.stop();
  }
});

lifecycle('state$ walks connecting → negotiating → ready → closed', async () => {
  const qemu = await startQemu({ hmp: false });
  try {
    const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
    const seen = firstValueFrom(monitor.state$.pipe(takeWhile((state) => state !== 'closed', true), toArray()));
    await monitor.close();
    assert.equal(await seen, ['ready', 'closed']);
    assert.equal(await monitor.closed, { expected: true });
  } finally {
    await qemu.stop();
  }
});

lifecycle.run();
