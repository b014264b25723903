/**
 * Property tests: random and mutated input fed in random chunks to the frame
 * decoder and to a whole RpcConnection with a dispatcher. Whatever the bytes,
 * the only way out is a connection-level FrameError: no exception escapes,
 * nothing hangs, every call that was framed before the end gets exactly one
 * well-formed reply (unless the connection closed first), and nothing else
 * is ever written.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { describeBody } from '../../lib/rpc/catalog.js';
import { RpcConnection } from '../../lib/rpc/connection.js';
import { FrameError } from '../../lib/rpc/errors.js';
import { FrameDecoder, carriesFdCount, encodeMessage, type RpcMessage } from '../../lib/rpc/framing.js';
import { remoteError } from '../../lib/rpc/messages.js';
import { MessageStatus, MessageType, QemuProc, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';
import { decodeXdr } from '../../lib/rpc/xdr.js';
import { CAPTURE_LOGS, readRawMessages } from './capture-log.js';
import { chunked } from '../helpers/chunks.js';
import { cannedDispatcher } from './canned-dispatcher.js';
import { propertyRuns } from '../helpers/property-runs.js';

/** Handler or codec failures that were not the client's fault: must stay empty. */
const unexpectedErrors: unknown[] = [];

const dispatcher = cannedDispatcher((error) => unexpectedErrors.push(error));

/** What a fresh decoder makes of the whole input: the messages, and whether it failed. */
function reference(input: Uint8Array): { messages: RpcMessage[]; failure: FrameError | null } {
  const decoder = new FrameDecoder();
  decoder.push(input);
  const messages: RpcMessage[] = [];
  try {
    for (let message = decoder.next(); message; message = decoder.next()) messages.push(message);
  } catch (error) {
    assert.instance(error, FrameError);
    return { messages, failure: error as FrameError };
  }
  return { messages, failure: null };
}

const callKey = (message: RpcMessage) => [message.header.prog, message.header.vers, message.header.proc, message.header.serial].join('/');

async function runConnection(input: Uint8Array, cuts: number[]): Promise<void> {
  const written: RpcMessage[] = [];
  const outputDecoder = new FrameDecoder({ skipFdPlaceholderBytes: false });
  const closes: Array<FrameError | null> = [];
  const connection = new RpcConnection(dispatcher, {
    write: (bytes) => written.push(...outputDecoder.decode(bytes)),
    close: (error) => closes.push(error),
  });
  for (const chunk of chunked(input, cuts)) connection.receive(chunk);

  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('connection did not settle within 2 s')), 2000);
  });
  try {
    await Promise.race([connection.settled(), hang]);
  } finally {
    clearTimeout(timer);
  }

  const expected = reference(input);
  assert.is(closes.length, expected.failure ? 1 : 0);
  if (expected.failure) assert.is(closes[0]?.reason, expected.failure.reason);

  const calls = expected.messages.filter((message) => message.header.type === MessageType.CALL || message.header.type === MessageType.CALL_WITH_FDS);
  const pendingCalls = calls.map(callKey);
  for (const reply of written) {
    assert.is(reply.header.type, MessageType.REPLY);
    const index = pendingCalls.indexOf(callKey(reply));
    assert.ok(index >= 0, `reply ${callKey(reply)} to no call`);
    pendingCalls.splice(index, 1);
    if (reply.header.status === MessageStatus.ERROR) {
      decodeXdr(remoteError, reply.body);
    } else {
      assert.is(reply.header.status, MessageStatus.OK);
      decodeXdr(describeBody(reply.header)!.codec, reply.body);
    }
  }
  if (!expected.failure) assert.equal(pendingCalls, [], 'calls left unanswered');
  assert.equal(unexpectedErrors, []);
}

const clientMessages = CAPTURE_LOGS.flatMap((file) => readRawMessages(file)).filter((raw) => {
  const type = raw.readInt32BE(16);
  return type === MessageType.CALL || type === MessageType.CALL_WITH_FDS || type === MessageType.MESSAGE;
});

/** A captured client message, possibly with one field of its header replaced. */
const capturedFrame = fc
  .tuple(
    fc.constantFrom(...clientMessages),
    fc.option(fc.tuple(fc.integer({ min: 1, max: 6 }), fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: -1, max: 0x7fff_ffff }))), { nil: null }),
  )
  .map(([raw, headerChange]) => {
    const frame = Buffer.from(raw);
    if (headerChange) frame.writeInt32BE(headerChange[1], headerChange[0] * 4);
    if (carriesFdCount(frame.readInt32BE(16)) && frame.length >= 32) return Buffer.concat([frame, Buffer.alloc(Math.min(frame.readUInt32BE(28), 32))]);
    return frame;
  });

/** A synthetic message: known or random program, procedure, type, status; body random or empty. */
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

/** Damage to a whole stream: a byte replaced, a cut, inserted garbage. */
type Mutation =
  | { kind: 'replace'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

function mutate(stream: Buffer, mutations: Mutation[]): Buffer {
  let result = Buffer.from(stream);
  for (const change of mutations) {
    const at = result.length === 0 ? 0 : change.at % result.length;
    switch (change.kind) {
      case 'replace':
        if (result.length > 0) result[at] = change.value;
        break;
      case 'truncate':
        result = result.subarray(0, at);
        break;
      case 'insert':
        result = Buffer.concat([result.subarray(0, at), change.bytes, result.subarray(at)]);
        break;
    }
  }
  return result;
}

const cuts = fc.array(fc.nat(), { maxLength: 12 });

test('property: random bytes in random chunks only ever close with a FrameError', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), cuts, (input, chunkCuts) => runConnection(input, chunkCuts)),
    { numRuns: 500 },
  );
});

test('property: captured and synthetic calls, mutated and chunked, are answered once each or close the connection', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(capturedFrame, syntheticFrame), { minLength: 1, maxLength: 12 }),
      fc.array(mutation, { maxLength: 3 }),
      cuts,
      (frames, mutations, chunkCuts) => runConnection(mutate(Buffer.concat(frames), mutations), chunkCuts),
    ),
    { numRuns: propertyRuns(1000) },
  );
});

test('property: the frame decoder gives the same messages and the same fault for any chunking', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(capturedFrame, syntheticFrame), { maxLength: 8 }),
      fc.array(mutation, { maxLength: 2 }),
      cuts,
      (frames, mutations, chunkCuts) => {
        const input = mutate(Buffer.concat(frames), mutations);
        const expected = reference(input);
        const decoder = new FrameDecoder();
        const messages: RpcMessage[] = [];
        let failure: unknown = null;
        try {
          for (const chunk of chunked(input, chunkCuts)) {
            decoder.push(chunk);
            for (let message = decoder.next(); message; message = decoder.next()) messages.push(message);
          }
        } catch (error) {
          failure = error;
        }
        assert.equal(messages, expected.messages);
        assert.is((failure as FrameError | null)?.reason, expected.failure?.reason);
      },
    ),
    { numRuns: propertyRuns(1000) },
  );
});

test.run();
