/**
 * serve --nats with JetStream, real QEMUs and a real nats-server: replay
 * since a time after a consumer's outage, and no event lost across a NATS
 * restart or while NATS is unreachable at start.
 */
import { rm } from 'node:fs/promises';
import { DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startNatsServer } from '../helpers/nats-server.js';
import { startQemu } from '../helpers/qemu.js';
import { eventually } from '../proxy/harness.js';
import type { RawClient } from '../helpers/raw-client.js';
import { HOST, eventLines, natsClient, negotiated, runWithEvents, startNatsServe } from './serve-harness.js';

const STREAM = 'QMPX_EVENTS';

/** `count` stop/cont pairs on `socket`; resolves with the event lines QEMU sent (2 per pair). */
async function toggle(socket: RawClient, count: number, tag: string): Promise<string[]> {
  const lines: string[] = [];
  for (let index = 0; index < count; index++) {
    lines.push(...eventLines(await runWithEvents(socket, 'cont', ['RESUME'], `${tag}c${index}`)));
    lines.push(...eventLines(await runWithEvents(socket, 'stop', ['STOP'], `${tag}s${index}`)));
  }
  return lines;
}

/**
 * Reads `count` messages with a fresh ordered consumer, and checks that
 * none is left after them (the last one's pending count is 0).
 */
async function replay(client: NatsConnection, count: number, options: { filter?: string; since?: string } = {}): Promise<JsMsg[]> {
  const consumer = await jetstream(client).consumers.get(STREAM, {
    filter_subjects: options.filter ?? `qmpx.*.*.evt.>`,
    ...(options.since === undefined ? {} : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.since }),
  });
  const messages: JsMsg[] = [];
  if (count === 0) {
    const info = await consumer.info();
    assert.is(info.num_pending, 0);
    return messages;
  }
  const iterator = await consumer.consume();
  const timer = setTimeout(() => void iterator.close(), 20_000);
  for await (const msg of iterator) {
    messages.push(msg);
    if (messages.length === count) break;
  }
  clearTimeout(timer);
  assert.is(messages.length, count, 'messages replayed before the deadline');
  assert.is(messages.at(-1)!.info.pending, 0, 'nothing after the expected messages');
  return messages;
}

/** One nanosecond after an RFC 3339 time with up to 9 fraction digits, in UTC. */
function oneNanosecondAfter(time: string): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(time);
  if (match === null) throw new Error(`not an RFC 3339 UTC time: ${time}`);
  const nanos = BigInt(Date.parse(`${match[1]}Z`)) * 1_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'));
  const after = nanos + 1n;
  const seconds = new Date(Number(after / 1_000_000_000n) * 1000).toISOString().slice(0, 19);
  return `${seconds}.${String(after % 1_000_000_000n).padStart(9, '0')}Z`;
}

test('after a consumer\'s outage, replay since the time of the last event it saw returns exactly the events it missed, for the fleet and for one VM', async () => {
  const nats = await startNatsServer();
  const [a, b] = await Promise.all([startQemu(), startQemu()]);
  const client = await natsClient(nats);
  const serve = await startNatsServe(nats, [{ name: 'vm-a', qemu: a }, { name: 'vm-b', qemu: b }], { jetStream: true });
  try {
    const socketA = await negotiated(serve.qmpPaths.get('vm-a')!);
    const socketB = await negotiated(serve.qmpPaths.get('vm-b')!);
    const before = [...(await toggle(socketA, 1, 'a')), ...(await toggle(socketB, 1, 'b'))];
    const seen = await replay(client, before.length);
    assert.equal(seen.map((msg) => msg.string()), before);
    // The consumer is gone now; the fleet goes on.
    const last = await (await jetstreamManager(client)).streams.getMessage(STREAM, { seq: seen.at(-1)!.seq });
    const since = oneNanosecondAfter(last!.timestamp);
    const missedA = await toggle(socketA, 2, 'a2');
    const missedB = await toggle(socketB, 1, 'b2');

    const missed = await replay(client, missedA.length + missedB.length, { since });
    const byVm = (name: string): string[] => missed.filter((msg) => msg.subject.startsWith(`qmpx.${HOST}.${name}.`)).map((msg) => msg.string());
    assert.equal(byVm('vm-a'), missedA);
    assert.equal(byVm('vm-b'), missedB);
    const onlyA = await replay(client, missedA.length, { since, filter: `qmpx.${HOST}.vm-a.evt.>` });
    assert.equal(onlyA.map((msg) => msg.string()), missedA);
    await socketA.close();
    await socketB.close();
  } finally {
    await serve.stop();
    await client.close();
    await Promise.all([a.stop(), b.stop(), nats.stop()]);
  }
});

test('a NATS restart loses no event with JetStream: every event QEMU sent before, during and after it is stored once, in wire order', async () => {
  const nats = await startNatsServer();
  const qemu = await startQemu();
  const serve = await startNatsServe(nats, [{ name: 'vm1', qemu }], { jetStream: true });
  let client = await natsClient(nats);
  try {
    const socket = await negotiated(serve.qmpPaths.get('vm1')!);
    const sent = await toggle(socket, 2, 'before');
    assert.equal((await replay(client, sent.length)).map((msg) => msg.string()), sent);
    await client.close();

    await nats.down();
    // serve keeps serving its socket while NATS is away.
    sent.push(...(await toggle(socket, 2, 'during')));
    await nats.up();
    sent.push(...(await toggle(socket, 1, 'after')));
    const back = await serve.logger.waitFor('NATS takes events again', 30_000);
    // Those QEMU sent before serve's client saw the connection go are sent, fail and are sent again instead.
    assert.ok(Number(back.fields.arrivedWhileDown) > 0, `events that arrived while down: ${String(back.fields.arrivedWhileDown)}`);
    assert.is(back.fields.dropped, 0);

    client = await natsClient(nats);
    const stored = await replay(client, sent.length);
    assert.equal(stored.map((msg) => msg.string()), sent, 'in = out, in order');
    const state = (await (await jetstreamManager(client)).streams.info(STREAM)).state;
    assert.is(state.messages, sent.length, 'stored once each');
    await socket.close();
  } finally {
    await serve.stop();
    await client.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test('a NATS server that comes back with an empty store gets the stream and the bucket again, and the events after', async () => {
  const nats = await startNatsServer();
  const qemu = await startQemu();
  const serve = await startNatsServe(nats, [{ name: 'vm1', qemu }], { jetStream: true });
  let client: NatsConnection | undefined;
  try {
    const socket = await negotiated(serve.qmpPaths.get('vm1')!);
    const before = await toggle(socket, 1, 'before');
    await serve.logger.waitFor('run states go to the NATS key-value bucket');
    // The events so far are stored (acknowledged) before the store is wiped; otherwise serve would rightly send them again afterwards.
    const early = await natsClient(nats);
    const earlyManager = await jetstreamManager(early);
    const storedBy = Date.now() + 10_000;
    while ((await earlyManager.streams.info(STREAM)).state.messages < before.length) {
      if (Date.now() > storedBy) throw new Error('the events before the wipe were not stored within 10 s');
    }
    await early.close();
    await nats.down();
    await rm(nats.storeDir, { recursive: true, force: true });
    await nats.up();
    // The stream is made again before the bucket is opened again, which is logged.
    const bucketOpened = (): number => serve.logger.entries.filter((entry) => entry.message === 'run states go to the NATS key-value bucket').length;
    await eventually(() => bucketOpened() === 2, 'the bucket opened again', 30_000);
    const after = await toggle(socket, 1, 'after');
    client = await natsClient(nats);
    assert.equal((await replay(client, after.length)).map((msg) => msg.string()), after);
    const manager = await jetstreamManager(client);
    assert.is((await manager.streams.info('KV_qmpx-run-state')).config.name, 'KV_qmpx-run-state');
    await socket.close();
  } finally {
    await serve.stop();
    await client?.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test('with NATS unreachable at start, serve serves its socket, counts the events meanwhile, and stores them once NATS is up', async () => {
  const nats = await startNatsServer({ startDown: true });
  const qemu = await startQemu();
  const serve = await startNatsServe(nats, [{ name: 'vm1', qemu }], { jetStream: true, metrics: true });
  let client: NatsConnection | undefined;
  try {
    await serve.logger.waitFor('cannot connect to NATS');
    const socket = await negotiated(serve.qmpPaths.get('vm1')!);
    const sent = await toggle(socket, 2, 'down');
    const metricsUrl = `http://127.0.0.1:${serve.handle.metricsAddress!.port}/metrics`;
    const whileDown = await (await fetch(metricsUrl)).text();
    assert.match(whileDown, /^qmpx_nats_connected 0$/m);
    assert.match(whileDown, new RegExp(`^qmpx_nats_events_while_down_total ${sent.length}$`, 'm'));
    assert.match(whileDown, new RegExp(`^qmpx_nats_events_buffered ${sent.length}$`, 'm'));
    await nats.up();
    const back = await serve.logger.waitFor('NATS takes events again', 30_000);
    assert.is(back.fields.arrivedWhileDown, sent.length);
    assert.is(back.fields.dropped, 0);
    const afterwards = await (await fetch(metricsUrl)).text();
    assert.match(afterwards, /^qmpx_nats_connected 1$/m);
    assert.match(afterwards, new RegExp(`^qmpx_nats_events_published_total ${sent.length}$`, 'm'));
    assert.match(afterwards, /^qmpx_nats_events_buffered 0$/m);
    assert.match(afterwards, /^qmpx_nats_events_dropped_total 0$/m);
    client = await natsClient(nats);
    assert.equal((await replay(client, sent.length)).map((msg) => msg.string()), sent);
    await socket.close();
  } finally {
    await serve.stop();
    await client?.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test('past maxBufferedEvents, events that arrive while NATS is down are dropped and counted', async () => {
  const nats = await startNatsServer({ startDown: true });
  const qemu = await startQemu();
  const serve = await startNatsServe(nats, [{ name: 'vm1', qemu }], { jetStream: true, maxBufferedEvents: 3 });
  let client: NatsConnection | undefined;
  try {
    const socket = await negotiated(serve.qmpPaths.get('vm1')!);
    const sent = await toggle(socket, 3, 'down');
    await serve.logger.waitFor('NATS event buffer full');
    await nats.up();
    const back = await serve.logger.waitFor('NATS takes events again', 30_000);
    assert.is(back.fields.arrivedWhileDown, 6);
    assert.is(back.fields.dropped, 3);
    client = await natsClient(nats);
    // The first three are kept, the rest dropped.
    assert.equal((await replay(client, 3)).map((msg) => msg.string()), sent.slice(0, 3));
    await socket.close();
  } finally {
    await serve.stop();
    await client?.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test.run();
