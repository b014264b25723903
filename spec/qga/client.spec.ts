import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { firstValueFrom, toArray } from 'rxjs';
import { connect, connectAgent, ConnectionClosedError, QmpError, silentLogger, UnsupportedError, type Monitor } from '../../lib/index.js';
import type { QgaMonitor } from '../../lib/qga/client.js';
import { rawQmp, startQga, type QgaInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ agent: QgaInstance }>('guest agent client against real qemu-ga');

test.before(async (context) => {
  context.agent = await startQga();
});

test.after(async (context) => {
  await context.agent.stop();
});

async function withAgent<T>(path: string, body: (agent: QgaMonitor) => Promise<T>): Promise<T> {
  const agent = (await connect(path, { protocol: 'qga', logger: silentLogger, commandTimeoutMs: 10_000 })) as QgaMonitor;
  try {
    return await body(agent);
  } finally {
    await agent.close();
  }
}

test('connects without a greeting: protocol qga, no greeting, no capabilities, ready', async ({ agent }) => {
  await withAgent(agent.qgaPath, async (monitor) => {
    assert.is(monitor.protocol, 'qga');
    assert.is(monitor.greeting, null);
    assert.equal(monitor.capabilities, []);
    assert.is(await firstValueFrom(monitor.state$), 'ready');
  });
});

test('connectAgent() gives a typed GuestAgent: raw send and resync, no relay, state ready then closed', async ({ agent }) => {
  const guest = await connectAgent(agent.qgaPath, { logger: silentLogger, commandTimeoutMs: 10_000 });
  try {
    assert.is(guest.protocol, 'qga');
    assert.is(guest.state, 'ready');
    assert.is(guest.relay, null);
    assert.is(guest.banner, null);
    const reply = await guest.raw.send('guest-ping', undefined);
    assert.equal(reply.kind === 'return' ? reply.message.return : reply, {});
    await guest.resync();
  } finally {
    await guest.close();
  }
  assert.is(guest.state, 'closed');
});

test('guest-ping and guest-info', async ({ agent }) => {
  await withAgent(agent.qgaPath, async (monitor) => {
    assert.equal(await monitor.execute('guest-ping'), {});
    const info = await monitor.execute<{ version: string; supported_commands: { name: string; enabled: boolean }[] }>('guest-info');
    assert.is(info.version, '7.2.22');
    assert.ok(info.supported_commands.some((command) => command.name === 'guest-ping' && command.enabled));
  });
});

test('guest-get-time: nanoseconds beyond 2^53 as a bigint, digit for digit what the agent sent', async ({ agent }) => {
  await withAgent(agent.qgaPath, async (monitor) => {
    const reply = await monitor.send('guest-get-time', undefined);
    assert.is(reply.kind, 'return');
    const nanoseconds = (reply.message as { return: unknown }).return;
    assert.is(typeof nanoseconds, 'bigint');
    assert.ok((nanoseconds as bigint) > 2n ** 53n);
    assert.match(reply.text, new RegExp(`^\\{"return": ${String(nanoseconds)}, "id": \\d+\\}$`));
    assert.is(typeof (await monitor.execute('guest-get-time')), 'bigint');
  });
});

test('bigint arguments reach the agent exactly: guest-sync echoes 2^60 + 1', async ({ agent }) => {
  await withAgent(agent.qgaPath, async (monitor) => {
    assert.is(await monitor.execute('guest-sync', { id: 2n ** 60n + 1n }), 2n ** 60n + 1n);
    assert.is(await monitor.execute('guest-sync', { id: 12345 }), 12345);
  });
});

test('errors are QmpError with the agent\'s class and desc', async ({ agent }) => {
  await withAgent(agent.qgaPath, async (monitor) => {
    const error = await rejectionOf(monitor.execute('no-such-command'));
    assert.instance(error, QmpError);
    assert.is((error as QmpError).errorClass, 'CommandNotFound');
    assert.is((error as QmpError).desc, 'The command no-such-command has not been found');
    assert.equal(await monitor.execute('guest-ping'), {}, 'and the session carries on');
  });
});

test('hmp(), oob and non-object arguments are refused', async ({ agent }) => {
  await withAgent(agent.qgaPath, async (monitor: Monitor) => {
    assert.instance(await rejectionOf(monitor.hmp('info status')), UnsupportedError);
    assert.instance(await rejectionOf(monitor.execute('guest-ping', undefined, { oob: true })), UnsupportedError);
    assert.instance(await rejectionOf(monitor.execute('guest-ping', [] as unknown as object)), UnsupportedError);
  });
});

test('100 commands issued at once each get their own reply, in order', async ({ agent }) => {
  await withAgent(agent.qgaPath, async (monitor) => {
    const ids = Array.from({ length: 100 }, (_, i) => i * 1000 + 7);
    const replies = await Promise.all(ids.map((id) => monitor.execute('guest-sync', { id })));
    assert.equal(replies, ids);
    assert.is(monitor.pendingCount, 0);
  });
});

test('resync() on demand, between commands', async ({ agent }) => {
  await withAgent(agent.qgaPath, async (monitor) => {
    const before = monitor.execute('guest-sync', { id: 1 });
    const resynced = monitor.resync();
    const after = monitor.execute('guest-sync', { id: 2 });
    assert.equal(await Promise.all([before, resynced, after]), [1, undefined, 2]);
  });
});

test('a previous client that left half a command behind does not disturb the next one', async ({ agent }) => {
  const previous = await rawQmp(agent.qgaPath);
  await previous.send('{"execute": "guest-sync", "arguments": {"id": 99}}\n{"execute": "guest-pi');
  await previous.waitForLine((line) => line.includes('99'));
  await previous.close();
  await withAgent(agent.qgaPath, async (monitor) => {
    assert.equal(await monitor.execute('guest-ping'), {});
    assert.is(await monitor.execute('guest-sync', { id: 3 }), 3);
  });
});

test('close() rejects pending commands, completes the streams, and is idempotent', async ({ agent }) => {
  const monitor = (await connect(agent.qgaPath, { protocol: 'qga', logger: silentLogger })) as QgaMonitor;
  const events = firstValueFrom(monitor.events$.pipe(toArray()));
  const pending = [monitor.execute('guest-info'), monitor.execute('guest-ping')];
  await monitor.close();
  for (const promise of pending) assert.instance(await rejectionOf(promise), ConnectionClosedError);
  assert.equal(await events, []);
  assert.equal(await monitor.closed, { expected: true });
  assert.is(monitor.pendingCount, 0);
  await monitor.close();
  assert.instance(await rejectionOf(monitor.execute('guest-ping')), ConnectionClosedError);
});

test('the agent killed under a pending command: rejected, close unexpected', async () => {
  const agent = await startQga();
  try {
    const monitor = (await connect(agent.qgaPath, { protocol: 'qga', logger: silentLogger })) as QgaMonitor;
    await monitor.execute('guest-ping');
    await agent.kill();
    assert.instance(await rejectionOf(monitor.execute('guest-ping')), ConnectionClosedError);
    assert.is((await monitor.closed).expected, false);
    assert.is(monitor.pendingCount, 0);
  } finally {
    await agent.stop();
  }
});

test.run();
