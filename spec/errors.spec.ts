/**
 * The error tree: every error class a package entry exports descends from
 * QmpxError and has a `code` of its own, and the classes the daemon and the
 * CLI use without exporting them do too.
 */
import * as assert from 'node:assert/strict';
import { test } from 'uvu';
import * as entry from '../lib/index.js';
import * as passthroughEntry from '../lib/passthrough/index.js';
import { LaunchError } from '../lib/launch/qemu.js';
import { FrameError, XdrError } from '../lib/rpc/errors.js';
import { RpcError } from '../lib/rpc/rpc-error.js';
import { ErrorCode, ErrorDomain } from '../lib/rpc/protocol.js';

const { QmpxError } = entry;

/** One instance of each class, built with the fewest arguments its constructor takes. */
const instances: InstanceType<typeof QmpxError>[] = [
  new entry.QmpxError('x'),
  new entry.QmpError('GenericError', 'x', 'stop'),
  new entry.HmpError('info x', 'x'),
  new entry.ProtocolError('x'),
  new entry.ConnectionClosedError(),
  new entry.TimeoutError('x', 1),
  new entry.GreetingTimeoutError(1),
  new entry.AbortError('stop'),
  new entry.UnsupportedError('x'),
  new entry.StateError('x', 'closed'),
  new entry.InvalidArgumentError('x'),
  new XdrError('x', 'overrun', 0),
  new FrameError('x', 'too-short'),
  RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.RPC, 'x'),
  new LaunchError('x', ['qemu-system-x86_64']),
  new entry.ArgumentsRefusedError('blockdev-add', 'x', "Parameter 'x' is unexpected"),
  new entry.QapiSchemaError('x'),
  new entry.EventQueueOverflowError(1, 1),
  new entry.OutcomeUnknownError('qmpx.h.v.cmd.stop', 1, 'stop'),
  new entry.NoResponderError('qmpx.h.v.cmd.stop', 'v', 'h'),
  new entry.PermissionDeniedError('qmpx.h.v.cmd.stop', 'x'),
];

test('every error class the entries export is in the list above', () => {
  const exported: unknown[] = [...Object.values(entry), ...Object.values(passthroughEntry)];
  const errorClasses = exported.filter((value): value is typeof Error => typeof value === 'function' && value.prototype instanceof Error);
  assert.ok(errorClasses.length >= 11);
  for (const errorClass of errorClasses) {
    assert.ok(
      instances.some((instance) => instance.constructor === errorClass),
      `${errorClass.name} is exported but not checked here`,
    );
  }
});

test('every error descends from QmpxError and is named after its class', () => {
  for (const error of instances) {
    assert.ok(error instanceof QmpxError, `${error.constructor.name} does not descend from QmpxError`);
    assert.equal(error.name, error.constructor.name);
  }
});

test('codes are stable strings, one per class except the protocol family', () => {
  const codes = new Map<string, string>();
  for (const error of instances) {
    const { code } = error;
    assert.match(code, /^[A-Z][A-Z_]*$/, `${error.constructor.name}.code`);
    // XdrError and FrameError keep ProtocolError's code and tell their cases apart by `reason`.
    const owner = code === 'PROTOCOL_ERROR' ? 'ProtocolError' : error.constructor.name;
    const previous = codes.get(code);
    assert.ok(previous === undefined || previous === owner, `${error.constructor.name} and ${previous} share the code ${code}`);
    codes.set(code, owner);
  }
  assert.equal(new entry.StateError('x', 'closed').code, 'NOT_READY');
  assert.equal(new entry.InvalidArgumentError('x').code, 'INVALID_ARGUMENT');
  assert.equal(new LaunchError('x', []).code, 'LAUNCH_FAILED');
});

test('the pass-through entry exports the same InvalidArgumentError as the main entry', () => {
  assert.equal(passthroughEntry.InvalidArgumentError, entry.InvalidArgumentError);
});

test.run();
