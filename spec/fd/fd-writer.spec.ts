/**
 * Where a command with fds goes on the wire, driven byte-exactly through an
 * in-memory stream whose writes complete a turn later (as a socket's do when
 * the kernel is busy) and a recording sender in place of sendmsg: what real
 * QEMU cannot be made to do on demand (a full send buffer, a partial send, a
 * descriptor closed under the sender).
 */
import { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, silentLogger } from '../../lib/index.js';
import { QmpMonitor } from '../../lib/qmp/client.js';
import type { FdSender } from '../../lib/transport.js';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';
const RETURN = '{"return": {}}\r\n';

/** One piece of the wire, in order: through Node's queue, or with sendmsg and its fds. */
type Piece = { via: 'node'; text: string } | { via: 'sendmsg'; text: string; fds: readonly number[] };

interface Rig {
  monitor: QmpMonitor;
  wire: Piece[];
  reply(text: string): void;
  /** What the sender does on each call, in turn: take `n` bytes, -1 (would block) or throw; default all. */
  sendPlan: Array<number | Error>;
  /** The stream's unfinished writes when sendmsg was called, each time. */
  pendingAtSend: number[];
  socket: Duplex;
}

async function rig(): Promise<Rig> {
  const wire: Piece[] = [];
  const pendingAtSend: number[] = [];
  const sendPlan: Array<number | Error> = [];
  const socket: Duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      const text = chunk.toString();
      if (text.length > 0) wire.push({ via: 'node', text });
      if (text.includes('qmp_capabilities')) queueMicrotask(() => socket.emit('data', Buffer.from(RETURN)));
      setImmediate(callback);
    },
  });
  const sender: FdSender = {
    sendWithFds(bytes, fds) {
      pendingAtSend.push(socket.writableLength);
      const planned = sendPlan.shift() ?? bytes.length;
      if (planned instanceof Error) throw planned;
      if (planned < 0) return -1;
      wire.push({ via: 'sendmsg', text: Buffer.from(bytes.subarray(0, planned)).toString(), fds: [...fds] });
      return planned;
    },
  };
  const monitor = new QmpMonitor(socket, { logger: silentLogger }, 'fd-writer', { sender });
  const started = monitor.start(Buffer.alloc(0), 5000);
  socket.emit('data', Buffer.from(GREETING));
  await started;
  wire.length = 0;
  return { monitor, wire, reply: (text) => socket.emit('data', Buffer.from(text)), sendPlan, pendingAtSend, socket };
}

/** Waits until `condition` holds, turn by turn, failing after a bounded number of turns. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 1000; turn++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

function commandOf(piece: Piece): string {
  return /"execute": ?"([^"]+)"/.exec(piece.text)?.[1] ?? piece.text;
}

test('everything written before goes first, the fds go with exactly that command, what follows comes after', async () => {
  const { monitor, wire, reply, pendingAtSend } = await rig();
  const results = [
    monitor.execute('query-status'),
    monitor.execute('query-name'),
    monitor.execute('add-fd', { 'fdset-id': 1 }, { fds: [7, 8] }),
    monitor.execute('query-version'),
  ];
  await until(() => wire.length === 4, 'four commands on the wire');
  assert.equal(
    wire.map((piece) => [piece.via, commandOf(piece)]),
    [
      ['node', 'query-status'],
      ['node', 'query-name'],
      ['sendmsg', 'add-fd'],
      ['node', 'query-version'],
    ],
  );
  assert.equal(wire[2], { via: 'sendmsg', text: '{"execute":"add-fd","arguments":{"fdset-id":1}}\n', fds: [7, 8] });
  assert.equal(pendingAtSend, [0], "Node's queue was empty when sendmsg ran");
  reply(RETURN.repeat(4));
  await Promise.all(results);
});

test('a partial send: the rest of the command goes through Node, before the next command', async () => {
  const { monitor, wire, reply, sendPlan } = await rig();
  sendPlan.push(5);
  const results = [monitor.execute('getfd', { fdname: 'a' }, { fds: [9] }), monitor.execute('query-status')];
  await until(() => wire.length === 3, 'three pieces');
  assert.equal(wire.map((piece) => piece.via), ['sendmsg', 'node', 'node']);
  assert.is(wire[0]!.text + wire[1]!.text, '{"execute":"getfd","arguments":{"fdname":"a"}}\n', 'the two pieces are the getfd command');
  assert.is(wire[0]!.text.length, 5);
  assert.is(commandOf(wire[2]!), 'query-status');
  reply(RETURN.repeat(2));
  await Promise.all(results);
});

test('a full send buffer: sendmsg is tried again, and nothing else is written meanwhile', async () => {
  const { monitor, wire, reply, sendPlan, pendingAtSend } = await rig();
  sendPlan.push(-1, -1);
  const results = [monitor.execute('add-fd', {}, { fds: [4] }), monitor.execute('query-status')];
  await until(() => wire.length === 2, 'both written');
  assert.equal(wire.map((piece) => [piece.via, commandOf(piece)]), [
    ['sendmsg', 'add-fd'],
    ['node', 'query-status'],
  ]);
  assert.is(pendingAtSend.length, 3, 'two attempts would block, the third went');
  reply(RETURN.repeat(2));
  await Promise.all(results);
});

test('a command that settles before its turn to send goes without fds (its caller may have closed them)', async () => {
  const { monitor, wire, reply } = await rig();
  const controller = new AbortController();
  const before = monitor.execute('query-status');
  // Written now, through Node's queue: the getfd must wait for that write to finish.
  const aborted = monitor.execute('getfd', { fdname: 'late' }, { fds: [5], signal: controller.signal }).catch((error: Error) => error);
  controller.abort();
  await until(() => wire.length === 2, 'both written');
  assert.equal(wire[1], { via: 'sendmsg', text: '{"execute":"getfd","arguments":{"fdname":"late"}}\n', fds: [] });
  assert.is(((await aborted) as { code?: string }).code, 'ABORTED');
  reply(RETURN.repeat(2));
  await before;
});

test('an fd that is not open when sent (EBADF): the command rejects, goes without fds, and the session goes on', async () => {
  const { monitor, wire, reply, sendPlan } = await rig();
  sendPlan.push(Object.assign(new Error('sendmsg failed: EBADF'), { code: 'EBADF' }));
  const failed = monitor.execute('getfd', { fdname: 'gone' }, { fds: [6] }).catch((error: Error) => error);
  const next = monitor.execute('query-status');
  await until(() => wire.length === 2, 'both written');
  assert.equal(wire.map((piece) => [piece.via, commandOf(piece)]), [
    ['node', 'getfd'],
    ['node', 'query-status'],
  ]);
  assert.instance(await failed, InvalidArgumentError);
  reply('{"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}\r\n');
  reply('{"return": {"status": "running", "singlestep": false, "running": true}}\r\n');
  assert.equal(await next, { status: 'running', singlestep: false, running: true }, 'the next command got its own reply');
});

test('a command with fds waits while a getfd or add-fd is in flight, and so does everything after it', async () => {
  const { monitor, wire, reply } = await rig();
  const first = monitor.execute('add-fd', {}, { fds: [3] });
  const status = monitor.execute('query-status');
  const second = monitor.execute('add-fd', {}, { fds: [4] });
  const after = monitor.execute('query-name');
  await until(() => wire.length === 2, 'the first add-fd and query-status');
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(wire.map(commandOf), ['add-fd', 'query-status'], 'the second add-fd and what follows wait');
  reply(RETURN);
  await first;
  await until(() => wire.length === 4, 'the rest');
  assert.equal(wire.map((piece) => [piece.via, commandOf(piece)]), [
    ['sendmsg', 'add-fd'],
    ['node', 'query-status'],
    ['sendmsg', 'add-fd'],
    ['node', 'query-name'],
  ]);
  reply(RETURN.repeat(3));
  await Promise.all([status, second, after]);
});

test.run();
