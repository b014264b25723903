import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { remoteProcedures } from '../../lib/rpc/catalog.js';
import type { RpcConnection } from '../../lib/rpc/connection.js';
import { Dispatcher, ProgramTable, procedure, type CallContext } from '../../lib/rpc/dispatch.js';
import { RpcError } from '../../lib/rpc/rpc-error.js';
import { FrameDecoder, encodeMessage, type RpcHeader, type RpcMessage } from '../../lib/rpc/framing.js';
import { remoteError, type Domain, type RemoteError } from '../../lib/rpc/messages.js';
import { ErrorCode, ErrorDomain, MessageStatus, MessageType, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';
import { decodeXdr, encodeXdr } from '../../lib/rpc/xdr.js';

const lab1: Domain = { name: 'lab1', uuid: Buffer.from('3a1676389b404ecb9fad87007c96f632', 'hex'), id: 1 };
const UNKNOWN_PROC = 999;
const THROWS_PLAIN_ERROR = 1000;
const BAD_REPLY = 1001;

const unexpected: unknown[] = [];
const seenCalls: CallContext[] = [];

const remote = new ProgramTable(RpcProgram.REMOTE)
  .define(RemoteProc.AUTH_LIST, procedure(remoteProcedures.authList, () => ({ types: [0] })))
  .define(
    RemoteProc.CONNECT_SUPPORTS_FEATURE,
    procedure(remoteProcedures.connectSupportsFeature, async ({ feature }, call) => {
      seenCalls.push(call);
      await new Promise((resolve) => setTimeout(resolve, 1));
      return { supported: feature === 10 ? 1 : 0 };
    }),
  )
  .define(
    RemoteProc.DOMAIN_LOOKUP_BY_NAME,
    procedure(remoteProcedures.domainLookupByName, ({ name }) => {
      if (name === 'lab1') return { dom: lab1 };
      throw RpcError.report(ErrorCode.NO_DOMAIN, ErrorDomain.QEMU, `no domain with matching name '${name}'`);
    }),
  )
  .define(
    THROWS_PLAIN_ERROR,
    procedure(remoteProcedures.connectClose, () => {
      throw new Error('boom');
    }),
  )
  .define(BAD_REPLY, procedure(remoteProcedures.connectSupportsFeature, () => ({ supported: 2 ** 40 })));

const dispatcher = new Dispatcher([remote, new ProgramTable(RpcProgram.QEMU)], {
  onUnexpectedError: (error) => unexpected.push(error),
});
const callContext = { signal: new AbortController().signal, connection: {} as RpcConnection };

function header(overrides: Partial<RpcHeader> = {}): RpcHeader {
  return { prog: RpcProgram.REMOTE, vers: 1, proc: RemoteProc.AUTH_LIST, type: MessageType.CALL, serial: 42, status: MessageStatus.OK, ...overrides };
}

async function dispatch(requestHeader: RpcHeader, body: Buffer = Buffer.alloc(0), fdCount = 0): Promise<RpcMessage | null> {
  const reply = await dispatcher.dispatch({ header: requestHeader, body, fdCount }, callContext);
  if (reply === null) return null;
  const messages = new FrameDecoder().decode(reply);
  assert.is(messages.length, 1);
  return messages[0]!;
}

/** The reply must be an ERROR reply to `request` with exactly `expected` as body. */
async function expectError(request: RpcHeader, body: Buffer, expected: Partial<RemoteError>): Promise<void> {
  const reply = await dispatch(request, body);
  assert.ok(reply);
  assert.equal(reply.header, { ...request, type: MessageType.REPLY, status: MessageStatus.ERROR });
  const error = decodeXdr(remoteError, reply.body);
  const template = { level: 2, dom: null, str1: '%s', str3: null, int1: -1, int2: -1, net: null };
  assert.equal(error, { ...template, str2: expected.message, ...expected } as RemoteError);
}

const rpcFailure = (message: string): Partial<RemoteError> => ({ code: ErrorCode.RPC, domain: ErrorDomain.RPC, message });

test('a call is answered with REPLY/OK, same prog, vers, proc and serial', async () => {
  const reply = await dispatch(header());
  assert.equal(reply, {
    header: header({ type: MessageType.REPLY }),
    fdCount: 0,
    body: Buffer.from('0000000100000000', 'hex'),
  });
});

test('async handlers get the header, fd count, signal and connection; CALL_WITH_FDS is answered with REPLY', async () => {
  const request = header({ proc: RemoteProc.CONNECT_SUPPORTS_FEATURE, type: MessageType.CALL_WITH_FDS, serial: 3 });
  seenCalls.length = 0;
  const reply = await dispatch(request, Buffer.from('0000000a', 'hex'), 1);
  assert.equal(reply?.header, { ...request, type: MessageType.REPLY });
  assert.is(reply?.body.toString('hex'), '00000001');
  assert.is(seenCalls[0]?.fdCount, 1);
  assert.equal(seenCalls[0]?.header, request);
  assert.is(seenCalls[0]?.signal, callContext.signal);
  assert.is(seenCalls[0]?.connection, callContext.connection);
});

test('unknown program or version: "Cannot find program P version V", header words as signed ints', async () => {
  await expectError(header({ prog: 0x12345678 }), Buffer.alloc(0), rpcFailure('Cannot find program 305419896 version 1'));
  await expectError(header({ prog: 0xdeadbeef, vers: 0xffff_ffff }), Buffer.alloc(0), rpcFailure('Cannot find program -559038737 version -1'));
  await expectError(header({ vers: 2 }), Buffer.alloc(0), rpcFailure('Cannot find program 536903814 version 2'));
});

test('unknown procedure: code 39, domain 7, "unknown procedure: N"', async () => {
  await expectError(header({ proc: UNKNOWN_PROC }), Buffer.alloc(0), rpcFailure('unknown procedure: 999'));
  await expectError(header({ proc: -5 }), Buffer.alloc(0), rpcFailure('unknown procedure: -5'));
  await expectError(header({ prog: RpcProgram.QEMU, proc: 1 }), Buffer.alloc(0), rpcFailure('unknown procedure: 1'));
});

test('a call whose status is not OK is refused', async () => {
  await expectError(header({ status: MessageStatus.ERROR }), Buffer.alloc(0), rpcFailure('Unexpected message status 1'));
  await expectError(header({ status: -1 }), Buffer.alloc(0), rpcFailure('Unexpected message status 4294967295'));
});

test('an undecodable body: "Unable to decode message payload"; trailing bytes are ignored as libvirt does', async () => {
  const request = header({ proc: RemoteProc.DOMAIN_LOOKUP_BY_NAME, serial: 6 });
  await expectError(request, Buffer.from('00000009616263', 'hex'), rpcFailure('Unable to decode message payload'));
  await expectError(request, Buffer.from('00000001ff000000', 'hex'), rpcFailure('Unable to decode message payload'));
  const reply = await dispatch(request, Buffer.concat([encodeXdr(remoteProcedures.domainLookupByName.args, { name: 'lab1' }), Buffer.alloc(8)]));
  assert.is(reply?.header.status, MessageStatus.OK);
});

test('a handler that throws RpcError gets exactly that error back (mitm-raw A8 wording)', async () => {
  await expectError(header({ proc: RemoteProc.DOMAIN_LOOKUP_BY_NAME, serial: 6 }), encodeXdr(remoteProcedures.domainLookupByName.args, { name: 'nosuchdom' }), {
    code: ErrorCode.NO_DOMAIN,
    domain: ErrorDomain.QEMU,
    message: "Domain not found: no domain with matching name 'nosuchdom'",
    str1: 'Domain not found: %s',
    str2: "no domain with matching name 'nosuchdom'",
  });
});

test('any other exception becomes INTERNAL_ERROR and is reported as unexpected', async () => {
  unexpected.length = 0;
  await expectError(header({ proc: THROWS_PLAIN_ERROR }), Buffer.alloc(0), {
    code: ErrorCode.INTERNAL_ERROR,
    domain: ErrorDomain.RPC,
    message: 'internal error: boom',
    str1: 'internal error: %s',
    str2: 'boom',
  });
  assert.is(unexpected.length, 1);
  assert.is((unexpected[0] as Error).message, 'boom');
});

test('a reply that cannot be encoded: "Unable to encode message payload"', async () => {
  await expectError(header({ proc: BAD_REPLY }), Buffer.from('00000001', 'hex'), rpcFailure('Unable to encode message payload'));
});

test('only calls are answered: replies, messages, streams and unknown types get nothing, even for unknown programs', async () => {
  for (const type of [MessageType.REPLY, MessageType.MESSAGE, MessageType.STREAM, MessageType.REPLY_WITH_FDS, MessageType.STREAM_HOLE, 77, -1]) {
    assert.is(await dispatch(header({ type })), null);
    assert.is(await dispatch(header({ type, prog: 0x1234 })), null);
  }
});

test('an error too large to encode is replaced, not lost', async () => {
  const huge = new Dispatcher([
    new ProgramTable(RpcProgram.REMOTE).define(
      1,
      procedure(remoteProcedures.connectClose, () => {
        throw RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.RPC, 'x'.repeat(4 * 1024 * 1024));
      }),
    ),
  ]);
  const reply = await huge.dispatch({ header: header({ proc: 1 }), body: Buffer.alloc(0), fdCount: 0 }, callContext);
  const [message] = new FrameDecoder().decode(reply!);
  assert.is(decodeXdr(remoteError, message!.body).message, 'Unable to encode message payload');
});

test('tables refuse duplicates', () => {
  assert.throws(
    () => new ProgramTable(1).define(1, procedure(remoteProcedures.authList, () => ({ types: [] }))).define(1, procedure(remoteProcedures.authList, () => ({ types: [] }))),
    /^procedure 1 of program 1 defined twice$/,
  );
  assert.throws(() => new Dispatcher([new ProgramTable(1), new ProgramTable(1)]), /^program 1 version 1 registered twice$/);
  assert.not.throws(() => new Dispatcher([new ProgramTable(1, 1), new ProgramTable(1, 2)]));
});

test('error bodies are what encodeMessage + remote_error would give (byte check)', async () => {
  const reply = await dispatcher.dispatch({ header: header({ proc: UNKNOWN_PROC, serial: 7 }), body: Buffer.alloc(0), fdCount: 0 }, callContext);
  const expected = encodeMessage(
    header({ proc: UNKNOWN_PROC, serial: 7, type: MessageType.REPLY, status: MessageStatus.ERROR }),
    encodeXdr(remoteError, RpcError.report(ErrorCode.RPC, ErrorDomain.RPC, 'unknown procedure: 999').remote),
  );
  assert.equal(reply, expected);
});

test.run();
