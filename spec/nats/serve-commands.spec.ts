/**
 * Request-reply of serve --nats with real QEMUs and a real nats-server: a
 * read-only observer cannot change a VM, and two serve for one VM answer
 * each request once.
 */
import { readFile } from 'node:fs/promises';
import { createInbox, errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_HEADER } from '../../lib/nats/command-responder.js';
import { MESSAGE_ID_HEADER } from '../../lib/nats/event-message.js';
import { subjectFor } from '../../lib/nats/subjects.js';
import { startNatsServer, type NatsUser } from '../helpers/nats-server.js';
import { startQemu } from '../helpers/qemu.js';
import { Collected, HOST, eventLines, natsClient, negotiated, runWithEvents, startNatsServe } from './serve-harness.js';

const USERS: NatsUser[] = [
  { user: 'agent', password: 'agent-secret' },
  // May send requests on .ro. subjects only, and read the replies.
  { user: 'observer', password: 'observer-secret', permissions: { publish: { allow: ['qmpx.*.*.ro.>'] }, subscribe: { allow: ['_INBOX.>'] } } },
];

/** The next error the server reports to `client` (a permissions violation, say). */
function nextServerError(client: NatsConnection): Promise<Error> {
  return new Promise((resolve) => {
    void (async () => {
      for await (const status of client.status()) {
        if (status.type === 'error') {
          resolve(status.error);
          return;
        }
      }
    })();
  });
}

test('an observer granted only .ro. subjects can query a VM but cannot resume or stop it', async () => {
  const nats = await startNatsServer({ users: USERS });
  const qemu = await startQemu();
  const serve = await startNatsServe(nats, [{ name: 'vm1', qemu }], { user: 'agent' });
  const observer = await natsClient(nats, 'observer');
  try {
    await serve.logger.waitFor('answering NATS requests');
    const query = await observer.request(subjectFor(HOST, 'vm1', 'ro', 'query-status'), '{"execute":"query-status"}', { timeout: 5000 });
    assert.is(query.string(), '{"return": {"status": "prelaunch", "singlestep": false, "running": false}}');

    // The server refuses the .cmd. subject: a permissions violation, and the request gets no reply.
    const violation = nextServerError(observer);
    const denied = observer.request(subjectFor(HOST, 'vm1', 'cmd', 'cont'), '{"execute":"cont"}', { timeout: 2000 });
    const error = await violation;
    assert.instance(error, natsErrors.PermissionViolationError);
    assert.is((error as InstanceType<typeof natsErrors.PermissionViolationError>).subject, subjectFor(HOST, 'vm1', 'cmd', 'cont'));
    await denied.then(
      () => assert.unreachable('the denied request was answered'),
      (rejection: unknown) => assert.instance(rejection, Error),
    );

    // qmpx refuses a command the read-only policy does not allow on .ro.
    for (const command of ['cont', 'stop']) {
      const refused = await observer.request(subjectFor(HOST, 'vm1', 'ro', command), `{"execute":"${command}"}`, { timeout: 5000 });
      assert.is(refused.headers?.get(ERROR_HEADER), 'refused');
      assert.is(refused.string(), `{"error": {"class": "GenericError", "desc": "command '${command}' is not allowed by the qmpx read-only policy of .ro. subjects"}}`);
    }

    const socket = await negotiated(serve.qmpPaths.get('vm1')!);
    await socket.send('{"execute":"query-status","id":"after"}\n');
    assert.is(await socket.waitForLine((line) => line.includes('"id": "after"')), '{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": "after"}');
    assert.equal(eventLines(socket.lines()), [], 'no RESUME or STOP');
    await socket.close();
  } finally {
    await serve.stop();
    await observer.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test('two serve for one VM (a queue group) answer each request once, and publish its events with the same message ids', async () => {
  const nats = await startNatsServer();
  const qemu = await startQemu({ extraQmpSockets: 1 });
  const client = await natsClient(nats);
  const events = new Collected(client.subscribe(`qmpx.${HOST}.vm1.evt.>`));
  const first = await startNatsServe(nats, [{ name: 'vm1', qemu }]);
  const second = await startNatsServe(nats, [{ name: 'vm1', qemu, upstream: qemu.extraQmpPaths[0]! }]);
  const requests = 20;
  try {
    await Promise.all([first.logger.waitFor('answering NATS requests'), second.logger.waitFor('answering NATS requests')]);
    const inbox = createInbox();
    const replies = new Collected(client.subscribe(inbox));
    for (let index = 0; index < requests; index++) {
      client.publish(subjectFor(HOST, 'vm1', 'cmd', 'query-status'), `{"execute":"query-status","id":${index}}`, { reply: inbox });
    }
    await replies.waitFor(requests);

    const socket = await negotiated(first.qmpPaths.get('vm1')!);
    const sent = eventLines(await runWithEvents(socket, 'cont', ['RESUME'], 'c'));
    const published = await events.waitFor(2 * sent.length);
    await socket.close();

    await first.handle.stop();
    await second.handle.stop();
    await client.flush();
    // Both are stopped and every message they sent has been delivered: nothing more can come.
    const ids = replies.messages.map((msg) => (JSON.parse(msg.string()) as { id: number }).id).sort((x, y) => x - y);
    assert.equal(ids, Array.from({ length: requests }, (_, index) => index));
    const audited = (await Promise.all([first.auditPath, second.auditPath].map((path) => readFile(path, 'utf8'))))
      .flatMap((text) => text.trim().split('\n'))
      .filter((line) => line.includes('"origin":"nats"'));
    assert.is(audited.length, requests);

    // Each event twice (once per serve), with one message id: JetStream stores it once.
    const messageIds = published.map((msg) => msg.headers?.get(MESSAGE_ID_HEADER));
    assert.is(new Set(messageIds).size, sent.length);
    assert.equal(published.map((msg) => msg.string()), sent.flatMap((line) => [line, line]));
  } finally {
    await first.stop();
    await second.stop();
    await client.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test('a request QEMU leaves unanswered (QEMU stopped with SIGSTOP) is seen by the command watchdog, as a socket client\'s command is', async () => {
  const nats = await startNatsServer();
  const qemu = await startQemu();
  const serve = await startNatsServe(nats, [{ name: 'vm1', qemu }], { watchdogSeconds: 0.3 });
  const client = await natsClient(nats);
  let stopped = false;
  try {
    await serve.logger.waitFor('answering NATS requests');
    process.kill(qemu.pid, 'SIGSTOP');
    stopped = true;
    const reply = client.request(subjectFor(HOST, 'vm1', 'cmd', 'query-name'), '{"execute":"query-name","id":"w1"}', { timeout: 20_000 });
    const warning = await serve.logger.waitFor('not answered');
    assert.is(warning.level, 'warn');
    assert.equal([warning.fields.monitor, warning.fields.command], ['vm1', 'query-name']);
    process.kill(qemu.pid, 'SIGCONT');
    stopped = false;
    assert.is((await serve.logger.waitFor('QEMU answers again')).fields.command, 'query-name');
    assert.is((await reply).string(), '{"return": {}, "id": "w1"}');
  } finally {
    if (stopped) process.kill(qemu.pid, 'SIGCONT');
    await serve.stop();
    await client.close();
    await Promise.all([qemu.stop(), nats.stop()]);
  }
});

test.run();
