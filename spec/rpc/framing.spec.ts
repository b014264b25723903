import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameError, XdrError, type FrameErrorReason } from '../../lib/rpc/errors.js';
import { FrameDecoder, MIN_FRAME_BYTES, encodeMessage, type RpcHeader, type RpcMessage } from '../../lib/rpc/framing.js';
import { MessageStatus, MessageType, RpcProgram } from '../../lib/rpc/protocol.js';

const call = (proc: number, serial: number, type: number = MessageType.CALL): RpcHeader => ({
  prog: RpcProgram.REMOTE,
  vers: 1,
  proc,
  type,
  serial,
  status: MessageStatus.OK,
});

/** Decodes `input` whole, then one byte at a time, and checks both give the same. */
function decodeBothWays(input: Buffer, options?: ConstructorParameters<typeof FrameDecoder>[0]): RpcMessage[] {
  const whole = new FrameDecoder(options).decode(input);
  const byteDecoder = new FrameDecoder(options);
  const byByte: RpcMessage[] = [];
  for (let index = 0; index < input.length; index++) byByte.push(...byteDecoder.decode(input.subarray(index, index + 1)));
  assert.equal(byByte, whole);
  return whole;
}

/** Decoding `input` whole and byte by byte both end in a FrameError with `reason`, after the same messages. */
function failsBothWays(input: Buffer, reason: FrameErrorReason, options?: ConstructorParameters<typeof FrameDecoder>[0]): RpcMessage[] {
  const run = (chunks: Buffer[]): RpcMessage[] => {
    const decoder = new FrameDecoder(options);
    const messages: RpcMessage[] = [];
    let caught: unknown;
    try {
      for (const chunk of chunks) messages.push(...decoder.decode(chunk));
      decoder.decode(Buffer.alloc(0)); // a fault found after messages is thrown by the next call
    } catch (error) {
      caught = error;
    }
    assert.instance(caught, FrameError);
    assert.is((caught as FrameError).reason, reason);
    assert.ok(decoder.failed);
    assert.throws(() => decoder.next(), (error: unknown) => error === caught);
    assert.throws(() => decoder.push(Buffer.alloc(1)), (error: unknown) => error === caught);
    return messages;
  };
  const whole = run([input]);
  assert.equal(run(Array.from(input, (_, index) => input.subarray(index, index + 1))), whole);
  return whole;
}

test('a message is length, six header words, body; decoded whole or byte by byte', () => {
  const body = Buffer.from('0000000a', 'hex');
  const bytes = encodeMessage(call(60, 1), body);
  assert.is(bytes.toString('hex'), '0000002020008086000000010000003c0000000000000001000000000000000a'); // mitm-raw
  const [message] = decodeBothWays(bytes);
  assert.equal(message, { header: call(60, 1), fdCount: 0, body });
});

test('several messages in one stream, with fd counts and signed header words', () => {
  const messages = [
    encodeMessage(call(66, 0)),
    encodeMessage(call(7, 8, MessageType.CALL_WITH_FDS), Buffer.from('cafe0000', 'hex'), 1),
    encodeMessage({ prog: 0xffff_ffff, vers: 0xffff_ffff, proc: -1, type: -2, serial: 0xffff_ffff, status: -3 }),
  ];
  const decoded = decodeBothWays(Buffer.concat([messages[0]!, messages[1]!, Buffer.from([0]), messages[2]!]));
  assert.equal(decoded, [
    { header: call(66, 0), fdCount: 0, body: Buffer.alloc(0) },
    { header: call(7, 8, MessageType.CALL_WITH_FDS), fdCount: 1, body: Buffer.from('cafe0000', 'hex') },
    { header: { prog: 0xffff_ffff, vers: 0xffff_ffff, proc: -1, type: -2, serial: 0xffff_ffff, status: -3 }, fdCount: 0, body: Buffer.alloc(0) },
  ]);
});

test('the fd count sits between header and body (mitm-fds bytes)', () => {
  const raw = Buffer.from(
    '0000005020008087000000010000000700000004000000080000000000000002' +
      '000000046c6162313a1676389b404ecb9fad87007c96f632000000010000000b696e666f207374617475730000000001',
    'hex',
  );
  const [message] = decodeBothWays(raw, { skipFdPlaceholderBytes: false });
  assert.is(message!.fdCount, 2);
  assert.is(message!.body.readUInt32BE(0), 4); // the domain name's length, not the fd count
  assert.equal(encodeMessage(message!.header, message!.body, message!.fdCount), raw);
});

test('one placeholder byte per announced fd is skipped, whatever its value and chunking', () => {
  const withFds = encodeMessage(call(7, 8, MessageType.CALL_WITH_FDS), Buffer.alloc(0), 3);
  const next = encodeMessage(call(2, 9));
  const decoded = decodeBothWays(Buffer.concat([withFds, Buffer.from([0, 0xff, 7]), next]));
  assert.equal(
    decoded.map((message) => message.header.serial),
    [8, 9],
  );
  const strict = new FrameDecoder({ skipFdPlaceholderBytes: false });
  assert.is(strict.decode(withFds).length, 1);
  assert.throws(() => strict.decode(Buffer.concat([Buffer.from([0]), next])), (error: unknown) => error instanceof FrameError);
});

test('a partial message waits: nothing is returned until its last byte', () => {
  const bytes = encodeMessage(call(1, 2), Buffer.alloc(100, 1));
  const decoder = new FrameDecoder();
  assert.equal(decoder.decode(bytes.subarray(0, 3)), []);
  assert.equal(decoder.decode(bytes.subarray(3, bytes.length - 1)), []);
  assert.is(decoder.bufferedBytes, bytes.length - 1);
  assert.is(decoder.decode(bytes.subarray(bytes.length - 1)).length, 1);
  assert.is(decoder.bufferedBytes, 0);
});

test('the smallest message is 28 bytes; shorter length words fail the connection', () => {
  assert.is(decodeBothWays(encodeMessage(call(1, 1))).length, 1);
  assert.is(MIN_FRAME_BYTES, 28);
  for (const length of [0, 4, 27]) {
    const word = Buffer.alloc(4);
    word.writeUInt32BE(length);
    failsBothWays(Buffer.concat([encodeMessage(call(1, 1)), word, Buffer.alloc(40)]), 'too-short');
  }
});

test('a length over 32 MiB fails as soon as the length word is in, before the body', () => {
  const word = Buffer.alloc(4);
  word.writeUInt32BE(32 * 1024 * 1024 + 5);
  const before = failsBothWays(Buffer.concat([encodeMessage(call(1, 1)), word]), 'too-long');
  assert.is(before.length, 1);
  const limitWord = Buffer.alloc(4);
  limitWord.writeUInt32BE(32 * 1024 * 1024 + 4);
  assert.equal(new FrameDecoder().decode(limitWord), []); // exactly the limit: waits for the body
  failsBothWays(encodeMessage(call(1, 1), Buffer.alloc(8)), 'too-long', { maxMessageBytes: 24 + 4 });
});

test('fd counts over 32 or missing fail the connection', () => {
  const header = encodeMessage(call(7, 1, MessageType.CALL_WITH_FDS), Buffer.alloc(0), 0);
  const tooMany = Buffer.from(header);
  tooMany.writeUInt32BE(33, 28);
  failsBothWays(tooMany, 'bad-fd-count');
  const missing = encodeMessage(call(7, 1));
  missing.writeInt32BE(MessageType.REPLY_WITH_FDS, 16);
  failsBothWays(missing, 'bad-fd-count');
});

test('encodeMessage refuses what the wire cannot carry', () => {
  assert.throws(() => encodeMessage(call(1, 1), Buffer.alloc(0), 1), (error: unknown) => error instanceof XdrError);
  assert.throws(() => encodeMessage(call(1, 1, MessageType.CALL_WITH_FDS), Buffer.alloc(0), 33), (error: unknown) => error instanceof XdrError);
  assert.throws(() => encodeMessage({ ...call(1, 1), serial: -1 }), (error: unknown) => error instanceof XdrError);
  assert.throws(() => encodeMessage({ ...call(1, 1), proc: 0x8000_0000 }), (error: unknown) => error instanceof XdrError);
  assert.throws(() => encodeMessage(call(1, 1), Buffer.alloc(32 * 1024 * 1024 - 23)), (error: unknown) => error instanceof XdrError);
  assert.is(encodeMessage(call(1, 1), Buffer.alloc(32 * 1024 * 1024 - 24)).length, 32 * 1024 * 1024 + 4);
});

test('a 32 MiB message arriving in 64 KiB chunks is decoded once, intact', () => {
  const body = Buffer.alloc(32 * 1024 * 1024 - 24, 0x5a);
  body.writeUInt32BE(0xdeadbeef, body.length - 4);
  const bytes = encodeMessage(call(1, 77), body);
  const decoder = new FrameDecoder();
  const out: RpcMessage[] = [];
  for (let offset = 0; offset < bytes.length; offset += 65536) out.push(...decoder.decode(bytes.subarray(offset, offset + 65536)));
  assert.is(out.length, 1);
  assert.is(out[0]!.header.serial, 77);
  assert.is(out[0]!.body.length, body.length);
  assert.is(out[0]!.body.readUInt32BE(body.length - 4), 0xdeadbeef);
  assert.is(decoder.bufferedBytes, 0);
});

test('pushed chunks are copied: reusing them afterwards changes nothing', () => {
  const bytes = encodeMessage(call(3, 4), Buffer.from('00000004', 'hex'));
  const chunk = Buffer.from(bytes.subarray(0, 20));
  const decoder = new FrameDecoder();
  decoder.push(chunk);
  chunk.fill(0xff);
  const [message] = decoder.decode(bytes.subarray(20));
  assert.equal(message!.header, call(3, 4));
});

test.run();
