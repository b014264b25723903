/**
 * The three roles of contrib/nats/nats-server.conf, on a real nats-server
 * running that file unchanged, with a real QEMU behind a `qmpx serve
 * --nats` process logged in as the host agent (so the agent's grants are
 * enough for events, requests, the JetStream stream and the run-state
 * bucket), and `qmpx exec` run as a user would:
 *
 *   observer  the server refuses every .cmd. subject (permission violation);
 *             `cont` on .ro. is refused by qmpx; the VM's state is unchanged;
 *             queries on .ro. and the event subjects work
 *   operator  the server refuses `quit` (and HMP lines, which could say quit);
 *             QEMU keeps running; other commands work
 *
 * The VM's state is read on a second QMP socket of its QEMU, past qmpx and NATS.
 */
import { createServer } from 'node:net';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Monitor } from '../../lib/index.js';
import { findExecutable, spawnDaemon, type SpawnedDaemon } from '../helpers/daemon.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { REPO_ROOT, runQmpx, startQmpx } from '../cli/cli-process.js';
import { message, spawnServe, type ServeProcess } from '../proxy/serve-process.js';

const CONFIG = `${REPO_ROOT}contrib/nats/nats-server.conf`;
const PASSWORDS = { QMPX_AGENT_PASSWORD: 'agent-pw', QMPX_OPERATOR_PASSWORD: 'operator-pw', QMPX_OBSERVER_PASSWORD: 'observer-pw' };
const HOST = 'hv-1';
const VM = 'vm-1';

let dir: string;
let port: number;
let natsServer: SpawnedDaemon;
let qemu: QemuInstance;
let direct: Monitor;
let serve: ServeProcess;

/** `nats://USER:PASSWORD@127.0.0.1:PORT`. */
function urlAs(user: 'agent' | 'operator' | 'observer'): string {
  const password = PASSWORDS[`QMPX_${user.toUpperCase()}_PASSWORD` as keyof typeof PASSWORDS];
  return `nats://qmpx-${user}:${password}@127.0.0.1:${port}`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A client as `user`, once the server takes connections (deadline 10 s). */
async function clientAs(user: 'operator' | 'observer'): Promise<NatsConnection> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await natsConnect({ servers: `127.0.0.1:${port}`, user: `qmpx-${user}`, pass: PASSWORDS[`QMPX_${user.toUpperCase()}_PASSWORD` as keyof typeof PASSWORDS] });
    } catch (error) {
      if (Date.now() > deadline || !natsServer.running) throw new Error(`nats-server did not take a connection: ${natsServer.stderrText()}`, { cause: error });
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

async function status(): Promise<{ status: string; running: boolean }> {
  return direct.execute<{ status: string; running: boolean }>('query-status');
}

test.before(async () => {
  dir = createTempDir('nats-roles');
  port = await freePort();
  // nats-server reads the passwords from its environment, as the config says.
  Object.assign(process.env, PASSWORDS);
  natsServer = await spawnDaemon('nats-server', findExecutable('nats-server', 'nats-server'), ['-c', CONFIG, '-a', '127.0.0.1', '-p', String(port), '-sd', dir], dir);
  await (await clientAs('observer')).close();
  qemu = await startQemu({ extraQmpSockets: 1, args: ['-name', VM] });
  direct = await connect(qemu.extraQmpPaths[0]!);
  serve = spawnServe(['--upstream', qemu.qmpPath, '--qmp', socketPathIn(dir, 'vm.qmp'), '--name', VM, '--nats', urlAs('agent'), '--nats-host', HOST, '--nats-jetstream']);
  await serve.waitForLog(message('answering NATS requests'), 'the serve answering requests');
  await serve.waitForLog(message('run states go to the NATS key-value bucket'), 'the run-state bucket');
});

test.after(async () => {
  serve?.child.kill('SIGTERM');
  await serve?.exited;
  await direct?.close();
  await qemu?.stop();
  await natsServer?.stop();
  if (dir !== undefined) await removeTempDir(dir);
});

test('the host agent role is enough for the serve: no permission violation at start', () => {
  assert.not.match(natsServer.stderrText(), /Violation/);
  assert.not.ok(serve.logs.some((line) => /permission/i.test(JSON.stringify(line))), JSON.stringify(serve.logs));
});

test('observer: the server refuses .cmd. (permission violation), qmpx refuses cont on .ro., the VM stays paused', async () => {
  assert.equal(await status(), { status: 'prelaunch', singlestep: false, running: false });

  const onCmd = await runQmpx(['exec', `${urlAs('observer')}/${HOST}/${VM}`, 'cont']);
  assert.is(onCmd.code, 2);
  assert.match(onCmd.stderr, `the NATS server refused the request: Permissions Violation for Publish to "qmpx.${HOST}.${VM}.cmd.cont"`);
  assert.match(natsServer.stderrText(), `Publish Violation - User "qmpx-observer", Subject "qmpx.${HOST}.${VM}.cmd.cont"`);

  const onRo = await runQmpx(['exec', `${urlAs('observer')}/${HOST}/${VM}`, '--read-only', 'cont']);
  assert.is(onRo.code, 1);
  assert.is(onRo.stdout, '{"error":{"class":"GenericError","desc":"command \'cont\' is not allowed by the qmpx read-only policy of .ro. subjects"}}\n');

  const stop = await runQmpx(['exec', `${urlAs('observer')}/${HOST}/${VM}`, 'stop']);
  assert.is(stop.code, 2);
  assert.match(stop.stderr, 'Permissions Violation');

  const state = await status();
  assert.is(state.status, 'prelaunch');
  assert.is(state.running, false);
});

test('observer: queries on .ro. (the VM found by name alone) and the event subjects work', async () => {
  const query = await runQmpx(['exec', `${urlAs('observer')}/${VM}`, '--read-only', 'query-status']);
  assert.is(query.code, 0, query.stderr);
  assert.is(query.stdout, '{"return":{"status":"prelaunch","singlestep":false,"running":false}}\n');

  // Without a user this server lets no one in.
  const denied = await runQmpx(['events', `nats://127.0.0.1:${port}`, '--vm', VM, '--event', 'RESUME']);
  assert.is(denied.code, 2);
  assert.match(denied.stderr, /Authorization Violation|authorization/i);
  const watching = startQmpx(['events', urlAs('observer'), '--vm', VM, '--event', 'RESUME']);
  await watching.waitForStderr(/watching events/);
  await direct.execute('cont');
  const seen = await watching.finish();
  assert.is(seen.code, 0, seen.stderr);
  assert.match(seen.stdout, `event RESUME at `);
  await direct.execute('stop');
});

test('operator: quit is refused by the server (HMP lines too), QEMU keeps running; other commands work', async () => {
  const quit = await runQmpx(['exec', `${urlAs('operator')}/${HOST}/${VM}`, 'quit']);
  assert.is(quit.code, 2);
  assert.match(quit.stderr, `Permissions Violation for Publish to "qmpx.${HOST}.${VM}.cmd.quit"`);
  const hmpQuit = await runQmpx(['exec', `${urlAs('operator')}/${HOST}/${VM}`, '--hmp', 'quit']);
  assert.is(hmpQuit.code, 2);
  assert.match(hmpQuit.stderr, `Permissions Violation for Publish to "qmpx.${HOST}.${VM}.cmd.human-monitor-command"`);
  assert.ok(qemu.process.exitCode === null && qemu.process.signalCode === null, 'QEMU is still running');
  assert.is((await status()).status, 'paused');

  const cont = await runQmpx(['exec', `${urlAs('operator')}/${HOST}/${VM}`, 'cont']);
  assert.is(cont.code, 0, cont.stderr);
  assert.is((await status()).status, 'running');
});

test.run();
