/**
 * protocol: 'auto': the first bytes decide between QMP and the human
 * monitor; anything else, or silence, is an error that says what was seen.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, detectProtocol, GreetingTimeoutError, ProtocolError, silentLogger } from '../../lib/index.js';
import { startFakePeer } from '../helpers/fake-peer.js';
import { GREETING } from './hmp-wire.js';
import { rejectionOf } from '../helpers/rejection.js';

test('detectProtocol: "{" is QMP, a "QEMU " banner (or the start of one) is HMP', () => {
  assert.is(detectProtocol(Buffer.from('{"QMP": {}}\r\n')), 'qmp');
  assert.is(detectProtocol(Buffer.from('\r\n  {')), 'qmp');
  assert.is(detectProtocol(Buffer.from(GREETING)), 'hmp');
  assert.is(detectProtocol(Buffer.from('QE')), 'hmp');
});

test('detectProtocol: anything else is a ProtocolError quoting it', () => {
  for (const seen of ['SSH-2.0-OpenSSH_9.2\r\n', 'QEMX', '', '\x00\x01']) {
    const error = (() => {
      try {
        detectProtocol(Buffer.from(seen, 'latin1'));
      } catch (caught) {
        return caught as Error;
      }
      throw new Error(`${JSON.stringify(seen)} was accepted`);
    })();
    assert.instance(error, ProtocolError);
    assert.ok(error.message.includes(JSON.stringify(seen)), error.message);
  }
});

test("connect() with 'auto' to a peer that is not a monitor: ProtocolError quoting its first bytes", async () => {
  const peer = await startFakePeer({ greeting: 'SSH-2.0-OpenSSH_9.2\r\n' });
  try {
    peer.expectClose();
    const error = await rejectionOf(connect(peer.path, { logger: silentLogger }));
    assert.instance(error, ProtocolError);
    assert.match(error.message, /got "SSH-2\.0-OpenSSH_9\.2\\r\\n"/);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test("connect() with protocol 'qmp' to a text monitor fails at once with ProtocolError quoting its banner", async () => {
  const peer = await startFakePeer({ greeting: GREETING });
  try {
    peer.expectClose();
    const error = await rejectionOf(connect(peer.path, { protocol: 'qmp', greetingTimeoutMs: 3000, logger: silentLogger }));
    assert.instance(error, ProtocolError);
    assert.match(error.message, /human monitor's banner "QEMU 7\.2\.22 monitor/);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test("connect() with 'auto' to a silent peer: GreetingTimeoutError", async () => {
  const peer = await startFakePeer({ greeting: null });
  try {
    peer.expectClose();
    const error = await rejectionOf(connect(peer.path, { greetingTimeoutMs: 200, logger: silentLogger }));
    assert.instance(error, GreetingTimeoutError);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test("connect() with 'auto' to an HMP peer whose banner arrives a byte at a time", async () => {
  const peer = await startFakePeer({ greeting: null });
  try {
    for (const byte of GREETING) peer.send(byte);
    peer.expectClose();
    const monitor = await connect(peer.path, { logger: silentLogger });
    assert.is(monitor.protocol, 'hmp');
    await monitor.close();
    await peer.done();
  } finally {
    await peer.close();
  }
});

test.run();
