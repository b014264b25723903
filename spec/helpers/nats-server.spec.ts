import { existsSync } from 'node:fs';
import { connect as natsConnect, errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isProcessAlive } from './daemon.js';
import { startNatsServer } from './nats-server.js';
import { rejectionOf } from './rejection.js';

test('serves on its port with JetStream on; stop() ends the process and removes the store', async () => {
  const nats = await startNatsServer();
  const pid = nats.pid;
  let connection: NatsConnection | undefined;
  try {
    connection = await natsConnect({ servers: nats.url });
    const manager = await jetstreamManager(connection);
    const info = await manager.getAccountInfo();
    assert.is(info.streams, 0);
  } finally {
    await connection?.close();
    await nats.stop();
  }
  assert.ok(pid !== undefined && !isProcessAlive(pid));
  assert.not.ok(existsSync(nats.dir));
});

test('restart() comes back on the same port with the same JetStream store', async () => {
  const nats = await startNatsServer();
  try {
    const first = await natsConnect({ servers: nats.url });
    const manager = await jetstreamManager(first);
    await manager.streams.add({ name: 'KEPT', subjects: ['kept.>'] });
    await first.close();
    const firstPid = nats.pid;
    await nats.restart();
    assert.is.not(nats.pid, firstPid);
    const second = await natsConnect({ servers: nats.url });
    try {
      const info = await (await jetstreamManager(second)).streams.info('KEPT');
      assert.equal(info.config.subjects, ['kept.>']);
    } finally {
      await second.close();
    }
  } finally {
    await nats.stop();
  }
});

test('startDown reserves the port without serving it; up() starts it', async () => {
  const nats = await startNatsServer({ startDown: true });
  try {
    assert.is(nats.running, false);
    const error = await rejectionOf(natsConnect({ servers: nats.url, reconnect: false, timeout: 2000 }));
    assert.instance(error, natsErrors.ConnectionError);
    assert.match(error.message, /connection refused/);
    await nats.up();
    const connection = await natsConnect({ servers: nats.url });
    await connection.close();
  } finally {
    await nats.stop();
  }
});

test('users get the permissions configured: a denied publish is a permissions violation', async () => {
  const nats = await startNatsServer({
    users: [
      { user: 'observer', password: 'secret-1', permissions: { publish: { allow: ['ro.>'] }, subscribe: { allow: ['_INBOX.>'] } } },
    ],
  });
  try {
    assert.is(nats.urlFor('observer'), `nats://observer:secret-1@127.0.0.1:${nats.port}`);
    const anonymous = await rejectionOf(natsConnect({ servers: nats.url, reconnect: false }));
    assert.instance(anonymous, natsErrors.AuthorizationError);
    const connection = await natsConnect({ servers: nats.url, ...nats.credentialsFor('observer') });
    try {
      const violation = new Promise<Error>((resolve) => {
        void (async () => {
          for await (const status of connection.status()) {
            if (status.type === 'error') resolve(status.error);
          }
        })();
      });
      connection.publish('cmd.stop', 'x');
      const error = await violation;
      assert.instance(error, natsErrors.PermissionViolationError);
      assert.is((error as InstanceType<typeof natsErrors.PermissionViolationError>).subject, 'cmd.stop');
    } finally {
      await connection.close();
    }
  } finally {
    await nats.stop();
  }
});

test.run();
