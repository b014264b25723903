/**
 * Where file descriptors cannot go, against real QEMU and qemu-ga: each
 * refusal comes before anything is written (QEMU keeps no stray fd: the
 * next getfd without one still fails), and the caller's fds stay open.
 */
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, connectAgent, ConnectionClosedError, InvalidArgumentError, QmpError, silentLogger, UnsupportedError, type Monitor } from '../../lib/index.js';
import { startQemu, startQga, type QemuInstance, type QgaInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { closeOwned, fdsOn, isOpen, openTestFile } from './files.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance; tcpPort: number; dir: string; file: { path: string; fd: number } }>('file descriptors refused');

/** A port nothing listens on now, for QEMU's TCP monitor. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Connects to QEMU's TCP monitor once it listens, within a deadline. */
async function connectTcp(port: number, options: { fdPassing?: boolean } = {}): Promise<Monitor> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await connect(`tcp:127.0.0.1:${port}`, { logger: silentLogger, ...options });
    } catch (error) {
      if ((error as { code?: string }).code !== 'CONNECTION_CLOSED' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

test.before(async (context) => {
  context.tcpPort = await freePort();
  context.qemu = await startQemu({ args: ['-qmp', `tcp:127.0.0.1:${context.tcpPort},server=on,wait=off`] });
  context.dir = createTempDir('fd-refusals');
  context.file = openTestFile(context.dir, 'refused.img');
});

test.after(async (context) => {
  closeOwned(context.file.fd);
  await context.qemu.stop();
  await removeTempDir(context.dir);
});

/** The next getfd without an fd fails: QEMU holds no stray one. */
async function assertNoStrayFd(monitor: Monitor): Promise<void> {
  const error = await rejectionOf(monitor.execute('getfd', { fdname: 'stray-probe' }));
  assert.instance(error, QmpError);
  assert.is((error as QmpError).desc, 'No file descriptor supplied via SCM_RIGHTS');
}

test('a unix-socket connection opened without fdPassing: UnsupportedError naming the option', async ({ qemu, file }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    assert.is(monitor.fdPassing, false);
    const error = await rejectionOf(monitor.execute('getfd', { fdname: 'x' }, { fds: [file.fd] }));
    assert.instance(error, UnsupportedError);
    assert.is(error.message, 'getfd: cannot send file descriptors: the connection was opened without { fdPassing: true }');
    await assertNoStrayFd(monitor);
    assert.ok(isOpen(file.fd));
  } finally {
    await monitor.close();
  }
});

test('commands that take no fds, human-monitor-command, out-of-band, too many: UnsupportedError, nothing sent', async ({ qemu, file }) => {
  const monitor = await connect(qemu.qmpPath, { fdPassing: true, logger: silentLogger });
  try {
    const status = await rejectionOf(monitor.execute('query-status', undefined, { fds: [file.fd] }));
    assert.instance(status, UnsupportedError);
    assert.match(status.message, /^query-status: takes no file descriptors; only getfd and add-fd take them/);
    const human = await rejectionOf(monitor.hmp('getfd x', { fds: [file.fd] }));
    assert.instance(human, UnsupportedError);
    assert.match(human.message, /cannot go through human-monitor-command/);
    const viaExecute = await rejectionOf(monitor.execute('human-monitor-command', { 'command-line': 'getfd x' }, { fds: [file.fd] }));
    assert.instance(viaExecute, UnsupportedError);
    const oob = await rejectionOf(monitor.execute('getfd', { fdname: 'x' }, { fds: [file.fd], oob: true }));
    assert.instance(oob, UnsupportedError);
    assert.match(oob.message, /out-of-band/);
    const many = await rejectionOf(monitor.execute('add-fd', {}, { fds: Array.from({ length: 17 }, () => file.fd) }));
    assert.instance(many, UnsupportedError);
    assert.match(many.message, /at most 16 file descriptors per command/);
    await assertNoStrayFd(monitor);
    assert.is(fdsOn(qemu.pid, file.path), 0);
    assert.ok(isOpen(file.fd));
  } finally {
    await monitor.close();
  }
});

test('fds that are not open fds: InvalidArgumentError, nothing sent', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { fdPassing: true, logger: silentLogger });
  try {
    const closed = await rejectionOf(monitor.execute('getfd', { fdname: 'x' }, { fds: [987654] }));
    assert.instance(closed, InvalidArgumentError);
    assert.is(closed.message, 'getfd: file descriptor 987654 is not open in this process');
    const negative = await rejectionOf(monitor.execute('getfd', { fdname: 'x' }, { fds: [-1] }));
    assert.instance(negative, InvalidArgumentError);
    const notArray = await rejectionOf(monitor.execute('getfd', { fdname: 'x' }, { fds: 3 as unknown as number[] }));
    assert.instance(notArray, InvalidArgumentError);
    await assertNoStrayFd(monitor);
  } finally {
    await monitor.close();
  }
});

test('TCP: fds on a TCP monitor and fdPassing for a TCP target are UnsupportedError', async ({ tcpPort, file }) => {
  const monitor = await connectTcp(tcpPort);
  try {
    const error = await rejectionOf(monitor.execute('getfd', { fdname: 'x' }, { fds: [file.fd] }));
    assert.instance(error, UnsupportedError);
    assert.is(error.message, 'getfd: cannot send file descriptors: a TCP connection cannot carry them (they travel only over a unix socket)');
    await assertNoStrayFd(monitor);
  } finally {
    await monitor.close();
  }
  const refused = await rejectionOf(connect(`tcp:127.0.0.1:${tcpPort}`, { fdPassing: true, logger: silentLogger }));
  assert.instance(refused, UnsupportedError);
  assert.is(refused.message, `fdPassing: file descriptors travel only over a unix socket (SCM_RIGHTS), not tcp:127.0.0.1:${tcpPort}`);
});

test('a socket given to connect(): fds refused on it, and fdPassing refused for it; a missing path with fdPassing', async ({ qemu, dir, file }) => {
  const socket = createConnection(qemu.qmpPath);
  await new Promise((resolve) => socket.once('connect', resolve));
  const monitor = await connect({ socket }, { logger: silentLogger });
  try {
    const error = await rejectionOf(monitor.execute('getfd', { fdname: 'x' }, { fds: [file.fd] }));
    assert.instance(error, UnsupportedError);
    assert.is(error.message, 'getfd: cannot send file descriptors: a socket given to connect() cannot carry them');
    await assertNoStrayFd(monitor);
  } finally {
    await monitor.close();
  }
  const given = createConnection(qemu.qmpPath);
  try {
    const refused = await rejectionOf(connect({ socket: given }, { fdPassing: true, logger: silentLogger }));
    assert.instance(refused, UnsupportedError);
    assert.is(refused.message, 'fdPassing: a socket given to connect() cannot carry file descriptors; give its path instead');
  } finally {
    given.destroy();
  }
  const missing = join(dir, 'missing.sock');
  const unreachable = await rejectionOf(connect(missing, { fdPassing: true, logger: silentLogger }));
  assert.instance(unreachable, ConnectionClosedError);
  assert.is(unreachable.message, `cannot connect to ${missing}: connect failed: ENOENT`);
});

test('fdPassing must be true or false', async ({ qemu }) => {
  const error = await rejectionOf(connect(qemu.qmpPath, { fdPassing: 'yes' as unknown as boolean }));
  assert.instance(error, InvalidArgumentError);
  assert.is(error.message, 'connect(): fdPassing must be true or false, got "yes"');
});

test('the guest agent takes no fds: UnsupportedError, nothing sent', async ({ file }) => {
  const agentDaemon: QgaInstance = await startQga();
  try {
    for (const fdPassing of [false, true]) {
      const agent = fdPassing
        ? await connect(agentDaemon.qgaPath, { protocol: 'qga', fdPassing, logger: silentLogger })
        : await connectAgent(agentDaemon.qgaPath, { logger: silentLogger });
      try {
        assert.is(agent.fdPassing, false);
        const error = await rejectionOf(agent.execute('guest-ping', undefined, { fds: [file.fd] }));
        assert.instance(error, UnsupportedError);
        assert.is(error.message, 'guest-ping: the guest agent takes no file descriptors (its channel into the guest cannot carry them)');
        const raw = await rejectionOf(agent.raw!.send('guest-ping', undefined, { fds: [file.fd] }));
        assert.instance(raw, UnsupportedError);
        assert.equal(await agent.execute('guest-ping'), {}, 'the agent still answers');
      } finally {
        await agent.close();
      }
    }
  } finally {
    await agentDaemon.stop();
  }
});

test.run();
