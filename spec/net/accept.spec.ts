/**
 * Accepting through the C library: each connection arrives as a
 * close-on-exec, non-blocking fd with its peer's credentials; it becomes
 * Node's socket or an fd-carrying stream; running out of fds drops the
 * waiting connections instead of spinning, and accepting resumes once fds
 * are free again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listenPrivately, type AcceptedConnection } from '../../lib/net/listen.js';
import { silentLogger } from '../../lib/log.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { eventually } from '../proxy/harness.js';

const listenModule = fileURLToPath(new URL('../../lib/net/listen.js', import.meta.url));

function nextConnection(): { take: (connection: AcceptedConnection) => void; next: () => Promise<AcceptedConnection> } {
  const waiting: AcceptedConnection[] = [];
  const waiters: Array<(connection: AcceptedConnection) => void> = [];
  return {
    take: (connection) => {
      const waiter = waiters.shift();
      if (waiter) waiter(connection);
      else waiting.push(connection);
    },
    next: () => {
      const ready = waiting.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** The open flags of one of this process's fds, as /proc shows them. */
function fdFlags(fd: number): number {
  return parseInt(/^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
}

function python(script: string, ...args: string[]): ChildProcess {
  return spawn('python3', ['-c', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
}

test('an accepted connection knows its peer (pid, uid, gid) and its fd is close-on-exec and non-blocking', async () => {
  const dir = createTempDir('accept');
  const path = socketPathIn(dir, 'peer.sock');
  const connections = nextConnection();
  const bound = await listenPrivately(connections.take, path, 0o600, silentLogger);
  const client = python('import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.recv(1)', path);
  const connection = await connections.next();
  assert.equal(connection.peer, { pid: client.pid!, uid: process.getuid!(), gid: process.getgid!() });
  const flags = fdFlags(connection.fd);
  assert.ok((flags & 0o2000000) !== 0, `O_CLOEXEC in ${flags.toString(8)}`);
  assert.ok((flags & 0o4000) !== 0, `O_NONBLOCK in ${flags.toString(8)}`);
  connection.close();
  assert.is(await exited(client), 0);
  await bound.close();
  await removeTempDir(dir);
});

test("socket() is Node's own socket; fdStream() hands over the fds sent with the bytes", async () => {
  const dir = createTempDir('accept');
  const path = socketPathIn(dir, 'both.sock');
  const connections = nextConnection();
  const bound = await listenPrivately(connections.take, path, 0o600, silentLogger);

  const plain = net.createConnection(path);
  const socket = (await connections.next()).socket();
  socket.on('data', (chunk) => socket.write(chunk));
  const echoed = await new Promise<string>((resolve) => {
    plain.once('data', (chunk) => resolve(chunk.toString()));
    plain.write('ping');
  });
  assert.is(echoed, 'ping');
  plain.destroy();

  const sender = python(
    'import socket,sys,os\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nr,w=os.pipe()\nsocket.send_fds(s,[b"with-fd"],[r])\ns.shutdown(socket.SHUT_WR)\ns.recv(1)',
    path,
  );
  const stream = (await connections.next()).fdStream({ maxFds: 16, lingerMs: 1000 });
  const received: Array<{ text: string; fds: number[] }> = [];
  let ended = false;
  stream.attach({ data: (chunk, fds) => received.push({ text: chunk.toString(), fds }), end: () => (ended = true) });
  stream.resume();
  await eventually(() => ended, 'the end of the input');
  assert.is(received.map((chunk) => chunk.text).join(''), 'with-fd');
  const fds = received.flatMap((chunk) => chunk.fds);
  assert.is(fds.length, 1);
  assert.ok((fdFlags(fds[0]!) & 0o2000000) !== 0, 'a received fd is close-on-exec');
  stream.closeFds(fds);
  stream.destroy();
  assert.is(await exited(sender), 0);
  await bound.close();
  await removeTempDir(dir);
});

test('out of fds: waiting connections are closed unserved (logged), and accepting resumes once fds are free', async () => {
  const dir = createTempDir('accept');
  const path = socketPathIn(dir, 'emfile.sock');
  // A listener in a process allowed few fds: it keeps every connection until told to let them go.
  const script = `import(${JSON.stringify(listenModule)}).then(async ({ listenPrivately }) => {
    const held = [];
    const logger = { info() {}, debug() {}, error() {}, warn(fields, message) { console.log(message); } };
    await listenPrivately((connection) => {
      const socket = connection.socket();
      socket.on('error', () => undefined);
      socket.write('hello');
      held.push(socket);
    }, ${JSON.stringify(path)}, 0o600, logger);
    console.log('ready');
    process.stdin.on('data', () => { for (const socket of held.splice(0)) socket.destroy(); console.log('freed'); });
  });`;
  const child = spawn('sh', ['-c', 'ulimit -n 64 && exec "$0" -e "$1"', process.execPath, script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await eventually(() => output.includes('ready'), 'the listener');

  const outcomes: Array<'served' | 'closed'> = [];
  const clients: net.Socket[] = [];
  for (let i = 0; i < 80; i++) {
    const client = net.createConnection(path);
    let served = false;
    client.on('data', () => {
      if (!served) outcomes.push('served');
      served = true;
    });
    client.on('error', () => undefined);
    client.on('close', () => {
      if (!served) outcomes.push('closed');
    });
    clients.push(client);
  }
  await eventually(() => outcomes.length === 80, 'every client served or closed');
  assert.ok(outcomes.includes('served'));
  assert.ok(outcomes.includes('closed'), 'connections past the fd limit are closed, not left hanging');
  assert.match(output, /out of file descriptors/);
  for (const client of clients) client.destroy();

  child.stdin!.write('free\n');
  await eventually(() => output.includes('freed'), 'the held connections let go');
  const again = net.createConnection(path);
  const greeting = await new Promise<string>((resolve) => again.once('data', (chunk) => resolve(chunk.toString())));
  assert.is(greeting, 'hello');
  again.destroy();
  child.kill();
  await exited(child);
  await removeTempDir(dir);
});

test.run();
