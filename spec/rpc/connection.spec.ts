import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { remoteProcedures } from '../../lib/rpc/catalog.js';
import { RpcConnection, type RpcConnectionOptions, type RpcConnectionSink } from '../../lib/rpc/connection.js';
import { Dispatcher, ProgramTable, procedure, type CallContext } from '../../lib/rpc/dispatch.js';
import { FrameError } from '../../lib/rpc/errors.js';
import { FrameDecoder, encodeMessage, type RpcHeader, type RpcMessage } from '../../lib/rpc/framing.js';
import { KeepaliveProc, MessageStatus, MessageType, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';

interface Deferred {
  call: CallContext;
  release(supported: number): void;
}

/** A sink that records everything, and a REMOTE table whose SUPPORTS_FEATURE waits for the test to release it. */
function setup(options: RpcConnectionOptions = {}) {
  const written: RpcMessage[] = [];
  const writeDecoder = new FrameDecoder();
  const closes: Array<FrameError | null> = [];
  const readingChanges: boolean[] = [];
  const waiting: Deferred[] = [];
  const sink: RpcConnectionSink = {
    write: (bytes) => written.push(...writeDecoder.decode(bytes)),
    close: (error) => closes.push(error),
    setReading: (reading) => readingChanges.push(reading),
  };
  const table = new ProgramTable(RpcProgram.REMOTE)
    .define(RemoteProc.AUTH_LIST, procedure(remoteProcedures.authList, () => ({ types: [0] })))
    .define(
      RemoteProc.CONNECT_SUPPORTS_FEATURE,
      procedure(remoteProcedures.connectSupportsFeature, (_args, call) => new Promise<{ supported: number }>((resolve) => waiting.push({ call, release: (supported) => resolve({ supported }) }))),
    );
  const connection = new RpcConnection(new Dispatcher([table]), sink, options);
  return { connection, written, closes, readingChanges, waiting };
}

const header = (proc: number, serial: number, overrides: Partial<RpcHeader> = {}): RpcHeader => ({
  prog: RpcProgram.REMOTE,
  vers: 1,
  proc,
  type: MessageType.CALL,
  serial,
  status: MessageStatus.OK,
  ...overrides,
});
const authList = (serial: number) => encodeMessage(header(RemoteProc.AUTH_LIST, serial));
const supportsFeature = (serial: number) => encodeMessage(header(RemoteProc.CONNECT_SUPPORTS_FEATURE, serial), Buffer.from('0000000a', 'hex'));
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('calls are answered; whole input and byte-by-byte input give the same replies', async () => {
  const input = Buffer.concat([authList(0), authList(1), encodeMessage(header(77, 2)), authList(3)]);
  const outputs: RpcMessage[][] = [];
  for (const chunks of [[input], Array.from(input, (_, index) => input.subarray(index, index + 1))]) {
    const { connection, written, closes } = setup();
    for (const chunk of chunks) connection.receive(chunk);
    await connection.settled();
    assert.equal(closes, []);
    // Replies go out as handlers finish, so compare them in serial order.
    outputs.push([...written].sort((a, b) => a.header.serial - b.header.serial));
  }
  assert.equal(
    outputs[0]!.map((message) => [message.header.serial, message.header.status]),
    [
      [0, MessageStatus.OK],
      [1, MessageStatus.OK],
      [2, MessageStatus.ERROR],
      [3, MessageStatus.OK],
    ],
  );
  assert.equal(outputs[1], outputs[0]);
});

test('at most maxConcurrentCalls run; reading pauses while all slots are busy', async () => {
  const { connection, written, waiting, readingChanges } = setup({ maxConcurrentCalls: 2 });
  connection.receive(Buffer.concat([supportsFeature(1), supportsFeature(2), supportsFeature(3), authList(4)]));
  await tick();
  assert.is(waiting.length, 2);
  assert.is(connection.callsInFlight, 2);
  assert.equal(readingChanges, [false]);
  waiting[1]!.release(1);
  await tick();
  assert.equal(written.map((message) => message.header.serial), [2]);
  assert.is(waiting.length, 3); // serial 3 took the freed slot
  waiting[0]!.release(0);
  waiting[2]!.release(1);
  await connection.settled();
  assert.equal(written.map((message) => message.header.serial).sort(), [1, 2, 3, 4]);
  assert.is(readingChanges.at(-1), true);
  assert.is(connection.callsInFlight, 0);
});

test('unframeable input closes with the FrameError; running calls are aborted and their replies dropped', async () => {
  const { connection, written, waiting, closes } = setup();
  connection.receive(supportsFeature(1));
  await tick();
  const bad = Buffer.alloc(4);
  bad.writeUInt32BE(3);
  connection.receive(bad);
  assert.is(connection.state, 'closed');
  assert.is(closes.length, 1);
  assert.instance(closes[0], FrameError);
  assert.is(closes[0]!.reason, 'too-short');
  assert.ok(waiting[0]!.call.signal.aborted);
  waiting[0]!.release(1);
  await connection.settled();
  assert.equal(written, []);
  connection.receive(authList(5)); // ignored
  connection.close(); // no second close
  assert.is(closes.length, 1);
  assert.is(connection.send(header(1, 1)), false);
});

test('an unframeable tail closes at once: a call from the same chunk is dispatched but its reply dropped', async () => {
  const { connection, written, closes } = setup();
  const tooLong = Buffer.alloc(4);
  tooLong.writeUInt32BE(0xffff_ffff);
  connection.receive(Buffer.concat([authList(1), tooLong]));
  await connection.settled();
  assert.is(closes[0]?.reason, 'too-long');
  assert.equal(written, []); // the reply came after close: dropped, as libvirtd drops a failed client's queue
});

test('close() is idempotent and reports no error', () => {
  const { connection, closes } = setup();
  connection.close();
  connection.close();
  assert.equal(closes, [null]);
  assert.ok(connection.signal.aborted);
});

test('message filters see messages first: a keepalive PING is answered with PONG and never dispatched', async () => {
  const { connection, written } = setup();
  const keepalive = (proc: number): RpcHeader => ({ prog: RpcProgram.KEEPALIVE, vers: 1, proc, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK });
  connection.addMessageFilter((message, from) => {
    if (message.header.prog !== RpcProgram.KEEPALIVE || message.header.type !== MessageType.MESSAGE) return false;
    if (message.header.proc === KeepaliveProc.PING) from.send(keepalive(KeepaliveProc.PONG));
    return true;
  });
  connection.receive(Buffer.concat([encodeMessage(keepalive(KeepaliveProc.PING)), encodeMessage(keepalive(KeepaliveProc.PONG)), authList(9)]));
  await connection.settled();
  assert.equal(
    written.map((message) => [message.header.prog, message.header.proc, message.header.type]),
    [
      [RpcProgram.KEEPALIVE, KeepaliveProc.PONG, MessageType.MESSAGE],
      [RpcProgram.REMOTE, RemoteProc.AUTH_LIST, MessageType.REPLY],
    ],
  );
  // the PONG bytes match the captured ones (mitm-ev)
  const pong = encodeMessage(keepalive(KeepaliveProc.PONG)).toString('hex');
  assert.is(pong, '0000001c6b6565700000000100000002000000020000000000000000');
});

test('input buffered past the limit while calls wait closes the connection (input-overflow)', async () => {
  const { connection, waiting, closes } = setup({ maxConcurrentCalls: 1, maxBufferedInputBytes: 100 });
  connection.receive(supportsFeature(1));
  for (let serial = 2; closes.length === 0 && serial < 10; serial++) connection.receive(supportsFeature(serial));
  assert.is(closes[0]?.reason, 'input-overflow');
  waiting[0]!.release(0);
  await connection.settled();
});

test('a CALL_WITH_FDS followed by its fd placeholder byte, then a call: both answered', async () => {
  const { connection, written, closes } = setup();
  const withFds = encodeMessage(header(RemoteProc.AUTH_LIST, 1, { type: MessageType.CALL_WITH_FDS }), Buffer.alloc(0), 1);
  connection.receive(Buffer.concat([withFds, Buffer.from([0]), authList(2)]));
  await connection.settled();
  assert.equal(closes, []);
  assert.equal(written.map((message) => [message.header.serial, message.header.type]), [
    [1, MessageType.REPLY],
    [2, MessageType.REPLY],
  ]);
});

test('connections have distinct ids; send() writes server messages while open', () => {
  const first = setup();
  const second = setup();
  assert.is.not(first.connection.id, second.connection.id);
  const event: RpcHeader = { prog: RpcProgram.QEMU, vers: 1, proc: 6, type: MessageType.MESSAGE, serial: 1, status: MessageStatus.OK };
  assert.ok(first.connection.send(event, Buffer.from('0000000e', 'hex')));
  assert.equal(first.written[0]?.header, event);
});

test.run();
