import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Subject } from 'rxjs';
import {
  AbortError,
  connect,
  ConnectionClosedError,
  EventQueueOverflowError,
  listenForEvents,
  silentLogger,
  TimeoutError,
  waitForEvent,
  type QmpEvent,
} from '../../lib/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { qmpEvent, startFakePeer } from '../helpers/fake-peer.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance }>('waiting for events against real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu({ machine: 'pc' });
});

test.after(async (context) => {
  await context.qemu.stop();
});

test('stop, then STOP: the wait started before the command resolves with the event', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    const resumed = waitForEvent(monitor, 'RESUME', { timeoutMs: 10_000 });
    await monitor.execute('cont');
    await resumed;
    const stopped = waitForEvent(monitor, 'STOP', { timeoutMs: 10_000 });
    await monitor.execute('stop');
    const event = await stopped;
    assert.is(event.event, 'STOP');
    assert.type(event.timestamp.seconds, 'number');
    const status = await monitor.execute('query-status');
    assert.is(status.running, false, 'typed result: QueryStatusReturn');
  } finally {
    await monitor.close();
  }
});

test('device_del, then DEVICE_DELETED matched on its device id', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    await monitor.execute('device_add', { driver: 'usb-kbd', id: 'kbd0' });
    const deleted = waitForEvent(monitor, 'DEVICE_DELETED', { match: (event) => event.data.device === 'kbd0', timeoutMs: 10_000 });
    await monitor.execute('device_del', { id: 'kbd0' });
    const event = await deleted;
    assert.is(event.data.device, 'kbd0');
  } finally {
    await monitor.close();
  }
});

test('no matching event within timeoutMs: TimeoutError, and the wait is unsubscribed', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    const error = await rejectionOf(waitForEvent(monitor, 'BLOCK_JOB_COMPLETED', { timeoutMs: 50 }));
    assert.instance(error, TimeoutError);
    assert.is((error as TimeoutError).code, 'TIMEOUT');
    assert.match(error.message, /no BLOCK_JOB_COMPLETED event within 50 ms/);
  } finally {
    await monitor.close();
  }
});

test('abort: AbortError, also for a signal aborted before the call', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    const controller = new AbortController();
    const waiting = waitForEvent(monitor, 'STOP', { signal: controller.signal });
    controller.abort();
    const error = await rejectionOf(waiting);
    assert.instance(error, AbortError);
    assert.is((error as AbortError).code, 'ABORTED');
    assert.instance(await rejectionOf(waitForEvent(monitor, 'STOP', { signal: AbortSignal.abort() })), AbortError);
  } finally {
    await monitor.close();
  }
});

test('the connection closing ends a wait with ConnectionClosedError', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  const waiting = waitForEvent(monitor, 'STOP');
  await monitor.close();
  const error = await rejectionOf(waiting);
  assert.instance(error, ConnectionClosedError);
  assert.is((error as ConnectionClosedError).code, 'CONNECTION_CLOSED');
});

test('an event in the same read as the reply to the command that caused it is not missed', async () => {
  const peer = await startFakePeer();
  try {
    const sameRead = `${JSON.stringify(qmpEvent('DEVICE_DELETED', { device: 'kbd0', path: '/machine/peripheral/kbd0' }))}\r\n{"return": {}}\r\n`;
    peer.autoRespond({}).expect('device_del').send(sameRead);
    const monitor = await connect(peer.path, { logger: silentLogger });
    try {
      const deleted = waitForEvent(monitor, 'DEVICE_DELETED', { match: (event) => event.data.device === 'kbd0', timeoutMs: 5000 });
      await monitor.execute('device_del', { id: 'kbd0' });
      assert.is((await deleted).data.path, '/machine/peripheral/kbd0');
      await peer.done();
    } finally {
      await monitor.close();
    }
  } finally {
    await peer.close();
  }
});

test('listenForEvents: events in order, filtered by name; break ends it', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    assert.is((await monitor.execute('query-status')).running, false, 'starts paused');
    const listener = listenForEvents(monitor, ['STOP', 'RESUME'], { signal: AbortSignal.timeout(10_000) });
    await monitor.execute('cont');
    await monitor.execute('stop');
    const seen: string[] = [];
    for await (const event of listener) {
      seen.push(event.event);
      if (seen.length === 2) break;
    }
    assert.equal(seen, ['RESUME', 'STOP']);
  } finally {
    await monitor.close();
  }
});

test('listenForEvents: an overflowing queue is reported after the queued events are read', async () => {
  const events$ = new Subject<QmpEvent>();
  const listener = listenForEvents({ events$ }, [], { maxQueued: 2 });
  for (let i = 0; i < 5; i++) events$.next(qmpEvent('STOP'));
  assert.is((await listener.next()).done, false);
  assert.is((await listener.next()).done, false);
  const error = await rejectionOf(listener.next());
  assert.instance(error, EventQueueOverflowError);
  assert.is((error as EventQueueOverflowError).code, 'EVENT_QUEUE_OVERFLOW');
  assert.is((error as EventQueueOverflowError).dropped, 3);
  assert.is((await listener.next()).done, true, 'the listener has stopped');
});

test.run();
