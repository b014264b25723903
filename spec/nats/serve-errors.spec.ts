/**
 * serve --nats with a monitor that stops answering (a fake peer: QEMU
 * cannot be made to lose a command on demand): the requester is told the
 * outcome is unknown, never that the command failed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_HEADER } from '../../lib/nats/command-responder.js';
import { subjectFor } from '../../lib/nats/subjects.js';
import { startFakePeer } from '../helpers/fake-peer.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { Collected, HOST, natsClient, startNatsServe, type NatsServe } from './serve-harness.js';

test('a command whose monitor goes away before replying is answered outcome-unknown', async () => {
  const nats = await startNatsServer();
  const peer = await startFakePeer();
  peer
    .expect('qmp_capabilities')
    .reply({ return: {} })
    .expect('query-status')
    .reply({ return: { status: 'running', singlestep: false, running: true } })
    .expect('system_reset')
    .disconnect()
    // serve connects again; the new link is left silent.
    .accept()
    .silence();
  const client = await natsClient(nats);
  const serve = await startNatsServe(nats, [{ name: 'vm1', upstream: peer.path }]);
  try {
    await serve.logger.waitFor('answering NATS requests');
    const reply = await client.request(subjectFor(HOST, 'vm1', 'cmd', 'system_reset'), '{"execute":"system_reset","id":"r1"}', { timeout: 5000 });
    assert.is(reply.headers?.get(ERROR_HEADER), 'outcome-unknown');
    assert.match(reply.string(), /^\{"id": "r1", "error": \{"class": "GenericError", "desc": "no reply from QEMU \(.*\): the command may or may not have run"\}\}$/);
    await peer.done();
  } finally {
    await serve.stop();
    await client.close();
    await peer.close();
    await nats.stop();
  }
});

test('an event larger than the server\'s max_payload is dropped and counted, and the events after it still go out', async () => {
  const nats = await startNatsServer({ maxPayloadBytes: 1024 });
  const peer = await startFakePeer();
  const client = await natsClient(nats);
  const events = new Collected(client.subscribe(`qmpx.${HOST}.vm1.evt.>`));
  let served!: (serve: NatsServe) => void;
  const serving = new Promise<NatsServe>((resolve) => (served = resolve));
  peer
    .expect('qmp_capabilities')
    .reply({ return: {} })
    .expect('query-status')
    .reply({ return: { status: 'running', singlestep: false, running: true } })
    .waitUntil(async () => (await serving).logger.waitFor('answering NATS requests'))
    .event('BIG_EVENT', { blob: 'x'.repeat(2000) })
    .event('SMALL_EVENT');
  const serve = await startNatsServe(nats, [{ name: 'vm1', upstream: peer.path }]);
  served(serve);
  try {
    const [small] = await events.waitFor(1);
    assert.is(small!.subject, `qmpx.${HOST}.vm1.evt.SMALL_EVENT`);
    const dropped = await serve.logger.waitFor('event dropped: NATS cannot take it');
    assert.is(dropped.fields.subject, `qmpx.${HOST}.vm1.evt.BIG_EVENT`);
    await peer.done();
  } finally {
    await serve.stop();
    await client.close();
    await peer.close();
    await nats.stop();
  }
});

test.run();
