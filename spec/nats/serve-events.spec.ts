/**
 * serve --nats with real QEMUs and a real nats-server: events on their
 * subjects in wire order, the run-state bucket, request-reply.
 */
import { readFile } from 'node:fs/promises';
import { Kvm } from '@nats-io/kv';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_HEADER, FORMAT_HEADER, REQUESTER_HEADER } from '../../lib/nats/command-responder.js';
import { HOST_HEADER, MESSAGE_ID_HEADER, TIMESTAMP_HEADER, VM_HEADER } from '../../lib/nats/event-message.js';
import { runStateKey, subjectFor } from '../../lib/nats/subjects.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { startQemu } from '../helpers/qemu.js';
import { Collected, HOST, eventLines, natsClient, negotiated, runWithEvents, startNatsServe } from './serve-harness.js';

test('the events of two QEMUs arrive on their own subjects in wire order, as QEMU wrote them, with host, vm, timestamp and message id headers', async () => {
  const nats = await startNatsServer();
  const [a, b] = await Promise.all([startQemu(), startQemu()]);
  const client = await natsClient(nats);
  // A name with a dot shows the token encoding: `.` would split the subject.
  const vms = [{ name: 'web.1', qemu: a }, { name: 'db', qemu: b }];
  const events = new Collected(client.subscribe(`qmpx.${HOST}.*.evt.>`));
  const serve = await startNatsServe(nats, vms);
  try {
    const socketA = await negotiated(serve.qmpPaths.get('web.1')!);
    const socketB = await negotiated(serve.qmpPaths.get('db')!);
    const seen = new Map<string, string[]>([['web.1', []], ['db', []]]);
    for (let round = 0; round < 3; round++) {
      for (const [name, socket] of [['web.1', socketA], ['db', socketB]] as const) {
        seen.get(name)!.push(...eventLines(await runWithEvents(socket, 'cont', ['RESUME'], `c${round}`)));
        seen.get(name)!.push(...eventLines(await runWithEvents(socket, 'stop', ['STOP'], `s${round}`)));
      }
    }
    const total = seen.get('web.1')!.length + seen.get('db')!.length;
    assert.is(total, 12);
    const received = await events.waitFor(total);
    for (const [name, lines] of seen) {
      const mine = received.filter((msg) => msg.headers?.get(VM_HEADER) === name);
      assert.equal(mine.map((msg) => msg.string()), lines, `${name}: bodies are QEMU's lines, in wire order`);
      assert.equal(
        mine.map((msg) => msg.subject),
        lines.map((line) => subjectFor(HOST, name, 'evt', (JSON.parse(line) as { event: string }).event)),
      );
      for (const msg of mine) {
        const { timestamp, event } = JSON.parse(msg.string()) as { event: string; timestamp: { seconds: number; microseconds: number } };
        const stamp = `${timestamp.seconds}.${String(timestamp.microseconds).padStart(6, '0')}`;
        assert.is(msg.headers?.get(HOST_HEADER), HOST);
        assert.is(msg.headers?.get(TIMESTAMP_HEADER), stamp);
        assert.is(msg.headers?.get(MESSAGE_ID_HEADER), `${HOST}/${name === 'web.1' ? 'web%2E1' : name}/${stamp}/${event}/0`);
      }
    }
    assert.ok(received.some((msg) => msg.subject === `qmpx.${HOST}.web%2E1.evt.STOP`));
    await socketA.close();
    await socketB.close();
  } finally {
    await serve.stop();
    await client.close();
    await Promise.all([a.stop(), b.stop(), nats.stop()]);
  }
});

test('the run-state bucket holds each VM\'s query-status, refreshed after STOP and RESUME', async () => {
  const nats = await startNatsServer();
  const qemu = await startQemu();
  const client = await natsClient(nats);
  const serve = await startNatsServe(nats, [{ name: 'vm1', qemu }], { jetStream: true });
  try {
    await serve.logger.waitFor('run states go to the NATS key-value bucket');
    const kv = await new Kvm(client).open('qmpx-run-state');
    const key = runStateKey(HOST, 'vm1');
    const valueNow = async (): Promise<Record<string, unknown> | undefined> => {
      const entry = await kv.get(key);
      return entry === null || entry.length === 0 ? undefined : (entry.json<Record<string, unknown>>());
    };
    const waitForStatus = async (status: string): Promise<Record<string, unknown>> => {
      const watch = await kv.watch({ key });
      try {
        for await (const entry of watch) {
          if (entry.length === 0) continue;
          const value = entry.json<Record<string, unknown>>();
          if (value.status === status) return value;
        }
      } finally {
        watch.stop();
      }
      throw new Error('watch ended');
    };
    const connected = await waitForStatus('prelaunch');
    assert.equal({ ...connected, updated: undefined }, { host: HOST, vm: 'vm1', status: 'prelaunch', running: false, monitor: 'up', cause: 'connect', updated: undefined });
    const socket = await negotiated(serve.qmpPaths.get('vm1')!);
    await runWithEvents(socket, 'cont', ['RESUME'], 'c');
    const running = await waitForStatus('running');
    assert.is(running.running, true);
    assert.is(running.cause, 'RESUME');
    assert.match(String(running.timestamp), /^\d+\.\d{6}$/);
    await runWithEvents(socket, 'stop', ['STOP'], 's');
    const paused = await waitForStatus('paused');
    assert.is(paused.running, false);
    assert.is(paused.cause, 'STOP');
    assert.is((await valueNow())?.status, 'paused');
    await socket.close();
  } finally {
    await serve.stop();
    await client.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test('a request on .cmd.query-status gets QEMU\'s reply; qmpx answers a mismatch and bad input itself; the audit log says NATS and the monitor is tainted', async () => {
  const nats = await startNatsServer();
  const qemu = await startQemu();
  const client = await natsClient(nats);
  const serve = await startNatsServe(nats, [{ name: 'vm1', qemu }]);
  try {
    await serve.logger.waitFor('answering NATS requests');
    const socket = await negotiated(serve.qmpPaths.get('vm1')!);
    await socket.send('{"execute":"query-status","id":"direct"}\n');
    const direct = await socket.waitForLine((line) => line.includes('"id": "direct"'));
    const subject = subjectFor(HOST, 'vm1', 'cmd', 'query-status');
    const reply = await client.request(subject, '{"execute":"query-status","id":"direct"}', { timeout: 5000 });
    assert.is(reply.string(), direct);
    assert.is(reply.headers?.get(ERROR_HEADER) ?? '', '');

    const mismatch = await client.request(subject, '{"execute":"stop","id":7}', { timeout: 5000 });
    assert.is(mismatch.headers?.get(ERROR_HEADER), 'mismatch');
    assert.is(mismatch.string(), `{"id": 7, "error": {"class": "GenericError", "desc": "the body runs 'stop' but the subject names 'query-status'"}}`);
    const invalid = await client.request(subject, 'query-status', { timeout: 5000 });
    assert.is(invalid.headers?.get(ERROR_HEADER), 'invalid');
    assert.match(invalid.string(), /^\{"error": \{"class": "GenericError", "desc": "cannot parse JSON: /);

    const hmpHeaders = natsHeaders();
    hmpHeaders.set(FORMAT_HEADER, 'hmp');
    hmpHeaders.set(REQUESTER_HEADER, 'alice');
    const hmp = await client.request(subjectFor(HOST, 'vm1', 'cmd', 'human-monitor-command'), 'info status', { timeout: 5000, headers: hmpHeaders });
    assert.is(hmp.string(), 'VM status: paused (prelaunch)\r\n');

    const snapshot = serve.handle.proxies[0]!.snapshot();
    assert.is(snapshot.tainted, true);
    await socket.close();
    await serve.handle.stop();
    const audit = (await readFile(serve.auditPath, 'utf8')).trim().split('\n').filter((line) => line.includes('"origin":"nats"')).map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(
      audit.map((record) => [record.command, record.outcome, record.socket, record.requester]),
      [
        ['query-status', 'ok', subject, undefined],
        ['stop', 'denied', subject, undefined],
        ['query-status', 'error', subject, undefined],
        ['human-monitor-command', 'ok', subjectFor(HOST, 'vm1', 'cmd', 'human-monitor-command'), 'alice'],
      ],
    );
    assert.ok(audit.every((record) => typeof record.replyTo === 'string' && String(record.replyTo).startsWith('_INBOX.')));
  } finally {
    await serve.stop();
    await client.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test.run();
