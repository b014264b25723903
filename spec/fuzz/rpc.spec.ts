/**
 * Fuzz: the libvirt RPC decoder (lib/rpc/framing.ts, xdr.ts, messages.ts)
 * and dispatch behind an RpcConnection. Seeds: every message of the libvirt
 * 9.0 captures (spec/rpc/vectors, both directions), the frames of two socat
 * logs of virsh and libvirt-python sessions (corpus/), and synthetic frames
 * of known and unknown programs, procedures, types and statuses; mutated
 * (bytes, header words, length words, splices) and chunked.
 *
 * Decoder: whole, byte by byte and in chunks give the same messages and the
 * same FrameError; every body the catalog describes either decodes or
 * throws XdrError, and what decodes re-encodes to bytes that decode to the
 * same value and re-encode to themselves (the reader takes any non-zero
 * bool or optional marker and any padding, as libvirt's does; the writer
 * is canonical).
 *
 * Connection: whatever the bytes, the connection either stays open or
 * closes once with a FrameError; every call framed before that gets exactly
 * one well-formed REPLY; nothing else is written; no handler fails
 * unexpectedly; it settles within the deadline.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { describeBody } from '../../lib/rpc/catalog.js';
import { RpcConnection } from '../../lib/rpc/connection.js';
import { FrameError, XdrError } from '../../lib/rpc/errors.js';
import { FrameDecoder, carriesFdCount, encodeMessage, type RpcMessage } from '../../lib/rpc/framing.js';
import { remoteError } from '../../lib/rpc/messages.js';
import { MessageStatus, MessageType, QemuProc, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';
import { decodeXdr, encodeXdr } from '../../lib/rpc/xdr.js';
import { CAPTURE_LOGS, readRawMessages } from '../rpc/capture-log.js';
import { cannedDispatcher } from '../rpc/canned-dispatcher.js';
import { IN_MEMORY_CASE_DEADLINE_MS, asyncRound, chunked, cutPoints, fuzzTarget, inputsPerTarget, mutate, mutation, socatStream, syncRound, withDeadline } from './support.js';

/** Frames of a byte stream, by their length words, as far as they are whole. */
function framesOf(stream: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  while (at + 4 <= stream.length) {
    const length = stream.readUInt32BE(at);
    if (length < 28 || at + length > stream.length) break;
    frames.push(stream.subarray(at, at + length));
    at += length;
  }
  return frames;
}

const capturedFrames: Buffer[] = [
  ...CAPTURE_LOGS.flatMap((file) => readRawMessages(file)),
  ...['socat-virsh-basics.hex.log', 'socat-python-lifecycle.hex.log'].flatMap((file) => [...framesOf(socatStream(file, '>')), ...framesOf(socatStream(file, '<'))]),
];

const syntheticFrame = fc
  .record({
    prog: fc.constantFrom(RpcProgram.REMOTE, RpcProgram.QEMU, RpcProgram.KEEPALIVE, 0x12345678),
    vers: fc.constantFrom(1, 1, 1, 2),
    proc: fc.oneof(fc.constantFrom(...Object.values(RemoteProc), ...Object.values(QemuProc)), fc.integer({ min: -3, max: 400 })),
    type: fc.constantFrom(0, 0, 0, 1, 2, 3, 4, 5, 6, 9),
    serial: fc.nat({ max: 20 }),
    status: fc.constantFrom(0, 0, 0, 1, 2, 5),
    body: fc.uint8Array({ maxLength: 80 }),
    fdCount: fc.nat({ max: 3 }),
  })
  .map(({ body, fdCount, ...header }) => {
    const fds = carriesFdCount(header.type) ? fdCount : 0;
    return Buffer.concat([encodeMessage(header, body, fds), Buffer.alloc(fds)]);
  });

/** A captured frame with one header or length word replaced, or none. */
const capturedFrame = fc
  .tuple(fc.constantFrom(...capturedFrames), fc.option(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.oneof(fc.integer({ min: 0, max: 8 }), fc.nat())), { nil: null }))
  .map(([raw, word]) => {
    const frame = Buffer.from(raw);
    if (word) frame.writeUInt32BE(word[1] >>> 0, word[0] * 4);
    return frame;
  });

const XDR_TOKENS = [Buffer.from([0, 0, 0, 0]), Buffer.from([0, 0, 0, 1]), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0x80, 0, 0, 0]), Buffer.from([0, 0, 0x10, 0])];

const stream = fc
  .tuple(fc.array(fc.oneof(capturedFrame, capturedFrame, syntheticFrame), { minLength: 1, maxLength: 8 }), fc.array(mutation(XDR_TOKENS), { maxLength: 3 }))
  .map(([frames, mutations]) => ({ frames: frames.length, bytes: mutate(Buffer.concat(frames), mutations) }));

/** What a decoder makes of `chunks`: the messages, and the FrameError reason it stopped with. */
function decodeAll(chunks: readonly Uint8Array[]): { messages: RpcMessage[]; failure: string | null } {
  const decoder = new FrameDecoder();
  const messages: RpcMessage[] = [];
  try {
    for (const chunk of chunks) {
      decoder.push(chunk);
      for (let message = decoder.next(); message; message = decoder.next()) messages.push(message);
    }
  } catch (error) {
    assert.instance(error, FrameError);
    return { messages, failure: (error as FrameError).reason };
  }
  return { messages, failure: null };
}

/** Decodes a body as the catalog describes it; what decodes must re-encode canonically to the same value. */
function checkBody(message: RpcMessage): void {
  const description = describeBody(message.header);
  if (description === undefined) return;
  let value: unknown;
  try {
    value = decodeXdr(description.codec, message.body);
  } catch (error) {
    assert.instance(error, XdrError, `${description.name} ${description.role}: ${String(error)}`);
    return;
  }
  const canonical = encodeXdr(description.codec, value);
  const again = decodeXdr(description.codec, canonical);
  assert.equal(again, value, `${description.name} ${description.role} re-encoded to another value`);
  assert.equal(encodeXdr(description.codec, again), canonical, `${description.name} ${description.role} is not canonical once re-encoded`);
}

/** Handler or codec failures that were not the client's fault: must stay empty. */
const unexpectedErrors: unknown[] = [];

const dispatcher = cannedDispatcher((error) => unexpectedErrors.push(error));

const callKey = (message: RpcMessage): string => [message.header.prog, message.header.vers, message.header.proc, message.header.serial].join('/');

const INPUTS = inputsPerTarget(5000);

test('fuzz: the RPC frame decoder gives the same result whole, byte by byte and in chunks; bodies decode or fail with XdrError, and re-encode exactly', async () => {
  await fuzzTarget(
    'rpc-decoder',
    INPUTS,
    250,
    syncRound(fc.tuple(stream, cutPoints), ([{ frames, bytes }, cuts]) => {
      const whole = decodeAll([bytes]);
      const byByte = decodeAll(Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1)));
      assert.equal(byByte, whole, 'byte by byte');
      assert.equal(decodeAll(chunked(bytes, cuts)), whole, 'in chunks');
      for (const message of whole.messages) checkBody(message);
      return frames;
    }),
  );
});

test('fuzz: an RPC connection answers every call framed before a fault exactly once, and writes nothing else', async () => {
  await fuzzTarget(
    'rpc-connection',
    INPUTS,
    100,
    asyncRound(fc.tuple(stream, cutPoints, fc.integer({ min: 1, max: 5 })), async ([{ frames, bytes }, cuts, maxConcurrentCalls]) => {
      const written: RpcMessage[] = [];
      const outputDecoder = new FrameDecoder({ skipFdPlaceholderBytes: false });
      const closes: Array<FrameError | null> = [];
      const connection = new RpcConnection(
        dispatcher,
        {
          write: (reply) => written.push(...outputDecoder.decode(reply)),
          close: (error) => closes.push(error),
        },
        { maxConcurrentCalls },
      );
      for (const chunk of chunked(bytes, cuts)) connection.receive(chunk);
      await withDeadline(connection.settled(), IN_MEMORY_CASE_DEADLINE_MS, 'the connection settled');

      const expected = decodeAll([bytes]);
      assert.is(closes.length, expected.failure === null ? 0 : 1);
      if (expected.failure !== null) assert.is(closes[0]?.reason, expected.failure);
      const pendingCalls = expected.messages
        .filter((message) => message.header.type === MessageType.CALL || message.header.type === MessageType.CALL_WITH_FDS)
        .map(callKey);
      for (const reply of written) {
        assert.is(reply.header.type, MessageType.REPLY);
        const index = pendingCalls.indexOf(callKey(reply));
        assert.ok(index >= 0, `reply ${callKey(reply)} to no call`);
        pendingCalls.splice(index, 1);
        decodeXdr(reply.header.status === MessageStatus.ERROR ? remoteError : describeBody(reply.header)!.codec, reply.body);
      }
      if (expected.failure === null) assert.equal(pendingCalls, [], 'calls left unanswered');
      assert.is(connection.callsInFlight, 0);
      assert.equal(unexpectedErrors, []);
      connection.close();
      return frames;
    }),
  );
});

test.run();
