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
import { HOST, natsClient, startNatsServe } from './serve-harness.js';

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

test.run();
