/**
 * Connection limits (per socket, in total) and the negotiation timeout, on
 * a real QEMU behind an in-process `serve`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServeConfig } from '../../lib/cli/serve.js';
import { configFromJson, type ServeConfig } from '../../lib/proxy/config.js';
import { startServe } from '../../lib/proxy/daemon.js';
import { rawQmp, startQemu, type RawClient } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger } from './harness.js';

async function serveWithLimits(limits: { maxConnections: number; maxConnectionsPerSocket: number }, negotiationTimeoutMs?: number) {
  const qemu = await startQemu();
  const dir = createTempDir('limits');
  const qmpPath = socketPathIn(dir, 'qmp.sock');
  const readOnlyPath = socketPathIn(dir, 'ro.sock');
  const config: ServeConfig = {
    logLevel: 'debug',
    ...limits,
    monitors: [{ upstream: qemu.qmpPath, qmp: qmpPath, readOnly: readOnlyPath, socketMode: 0o600, maxClientBufferBytes: 8 * 1024 * 1024 }],
  };
  const logger = new RecordingLogger();
  const handle = await startServe(config, { logger, shutdownGraceMs: 1000, proxy: { negotiationTimeoutMs } });
  return {
    qmpPath,
    readOnlyPath,
    logger,
    async stop(): Promise<void> {
      await handle.stop();
      await qemu.stop();
      await removeTempDir(dir);
    },
  };
}

/** A client that got the greeting (so it was admitted). */
async function greeted(path: string): Promise<RawClient> {
  const client = await rawQmp(path);
  await client.waitForLines(1);
  return client;
}

test('a socket past its limit, and the process past its total, close new clients at once; one log line per burst', async () => {
  const served = await serveWithLimits({ maxConnections: 5, maxConnectionsPerSocket: 3 });
  const clients: RawClient[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await greeted(served.readOnlyPath));
    const refused: RawClient[] = [];
    for (let i = 0; i < 5; i++) refused.push(await rawQmp(served.readOnlyPath));
    for (const client of refused) await client.waitForClose();
    assert.ok(refused.every((client) => client.text() === ''), 'a refused client gets nothing, not even the greeting');
    const refusals = served.logger.entries.filter((entry) => entry.message.startsWith('connection refused'));
    assert.is(refusals.length, 1, 'one line for the burst');
    assert.is(refusals[0]!.fields['limit'], 'per socket');
    // The full socket has slots of its own, up to the total.
    for (let i = 0; i < 2; i++) clients.push(await greeted(served.qmpPath));
    const overTotal = await rawQmp(served.qmpPath);
    await overTotal.waitForClose();
    assert.is(overTotal.text(), '');
    const totalRefusal = await served.logger.waitFor('connection refused');
    assert.ok(served.logger.entries.some((entry) => entry.message.startsWith('connection refused') && entry.fields['limit'] === 'in total'), totalRefusal.message);
    // A slot given back is usable again.
    await clients.shift()!.close();
    const late = await greeted(served.readOnlyPath);
    await late.send('{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n');
    assert.match((await late.waitForLines(3))[2]!, /"status": "prelaunch"|"status": "running"|"return"/);
    clients.push(late);
  } finally {
    for (const client of clients) await client.close();
    await served.stop();
  }
});

test('a greeted client that never negotiates is disconnected after the timeout with a log line; a negotiated one stays', async () => {
  const served = await serveWithLimits({ maxConnections: 10, maxConnectionsPerSocket: 10 }, 300);
  const idle = await greeted(served.readOnlyPath);
  const negotiated = await greeted(served.qmpPath);
  try {
    await negotiated.send('{"execute":"qmp_capabilities"}\n');
    await negotiated.waitForLines(2);
    await idle.waitForClose(10_000);
    await served.logger.waitFor('client did not negotiate capabilities in time');
    assert.is(idle.lines().length, 1, 'only the greeting');
    // Well past the timeout for the negotiated client too: it is still served.
    await negotiated.send('{"execute":"query-status","id":7}\n');
    const reply = (await negotiated.waitForLines(3))[2]!;
    assert.match(reply, /"id": 7/);
    assert.ok(!negotiated.closed);
  } finally {
    await idle.close();
    await negotiated.close();
    await served.stop();
  }
});

test('the limits come from the top level of the config file, and the command line wins', async () => {
  const file = { maxConnections: 7, maxConnectionsPerSocket: 3, monitors: [{ upstream: '/run/vm/qmp.sock', qmp: '/run/qmpx/vm.qmp' }] };
  const fromFile = configFromJson(file, 'limits.json');
  assert.is(fromFile.maxConnections, 7);
  assert.is(fromFile.maxConnectionsPerSocket, 3);
  assert.throws(() => configFromJson({ ...file, maxConnections: 0 }, 'limits.json'), /limits\.json: invalid config/);
  const fromCli = await buildServeConfig({ upstream: '/run/vm/qmp.sock', qmp: '/run/qmpx/vm.qmp', maxConnections: 5 }, []);
  assert.is(fromCli.maxConnections, 5);
  assert.is(fromCli.maxConnectionsPerSocket, undefined, 'absent: the default applies');
});

test.run();
