/**
 * connect() refuses what it cannot mean before opening anything (a
 * misspelt protocol, a negative or non-number timeout, a URL taken for a
 * path) with InvalidArgumentError naming the option; and "no greeting"
 * names the causes that fit, checked against a real held QEMU monitor and a
 * real guest agent.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkConnectArguments } from '../lib/connect-options.js';
import { connect, GreetingTimeoutError, InvalidArgumentError, silentLogger } from '../lib/index.js';
import { rawQmp, startQemu, startQga } from './helpers/qemu.js';
import { rejectionOf } from './helpers/rejection.js';

function refused(target: unknown, options: unknown, message: RegExp): void {
  assert.throws(() => checkConnectArguments(target, options), (error: Error) => error instanceof InvalidArgumentError && message.test(error.message));
}

test('connect() rejects a wrong option with InvalidArgumentError before opening the socket', async () => {
  // The path does not exist: had connect() tried it, the error would be ConnectionClosedError.
  const error = await rejectionOf(connect('/nonexistent/qmp.sock', { protocol: 'QMP' as 'qmp' }));
  assert.instance(error, InvalidArgumentError);
  assert.is((error as InvalidArgumentError).code, 'INVALID_ARGUMENT');
  assert.is(error.message, "connect(): protocol must be one of 'auto', 'qmp', 'hmp', 'qga', got \"QMP\" (did you mean 'qmp'?)");
});

test('timeouts and counts: positive numbers only', () => {
  refused('/x', { greetingTimeoutMs: -1 }, /^connect\(\): greetingTimeoutMs must be a positive number of milliseconds, got -1$/);
  refused('/x', { commandTimeoutMs: 0 }, /commandTimeoutMs must be a positive number of milliseconds, got 0/);
  refused('/x', { commandTimeoutMs: '500' }, /commandTimeoutMs must be a positive number of milliseconds, got "500"/);
  refused('/x', { greetingTimeoutMs: Number.NaN }, /greetingTimeoutMs .* got NaN/);
  refused('/x', { maxInFlight: 1.5 }, /maxInFlight must be a positive whole number, got 1\.5/);
  refused('/x', { maxMessageBytes: -4096 }, /maxMessageBytes must be a positive whole number/);
  refused('/x', { oob: 'yes' }, /oob must be true or false, got "yes"/);
  refused('/x', 'qmp', /options must be an object, got "qmp"/);
  checkConnectArguments('/x', { protocol: 'qga', greetingTimeoutMs: 1, commandTimeoutMs: 2.5, maxInFlight: 1, oob: false });
  checkConnectArguments('/x', undefined);
});

test('targets: a URL is not a path; objects need path, host and port, or socket', () => {
  refused('unix:///run/qemu.sock', {}, /^connect\(\): "unix:\/\/\/run\/qemu\.sock" looks like a URL; give a socket path, unix:PATH or tcp:HOST:PORT/);
  refused('tcp://127.0.0.1:4444', {}, /looks like a URL/);
  refused({ path: '' }, {}, /target\.path must be a non-empty string/);
  refused({ host: 'localhost', port: 70000 }, {}, /target\.port must be a whole number from 1 to 65535, got 70000/);
  refused({ host: 'localhost' }, {}, /target\.port .* got undefined/);
  refused({}, {}, /needs path, host and port, or socket/);
  refused(42, {}, /the target must be a path, unix:PATH, tcp:HOST:PORT or an object, got 42/);
  for (const fine of ['/run/q.sock', 'unix:/run/q.sock', 'tcp:localhost:4444', 'relative.sock']) checkConnectArguments(fine, {});
  checkConnectArguments({ host: '::1', port: 4444 }, {});
});

const CAUSES = [
  /another client may be holding the monitor/,
  /a qmpx serve greets only while its QEMU is connected/,
  /a guest-agent socket never greets \(connect to it with protocol 'qga'\)/,
];

test('no greeting from a monitor another client holds: the message names the causes that fit', async () => {
  const qemu = await startQemu();
  try {
    const holder = await rawQmp(qemu.qmpPath);
    await holder.waitForLines(1);
    const error = await rejectionOf(connect(qemu.qmpPath, { greetingTimeoutMs: 300, logger: silentLogger }));
    assert.instance(error, GreetingTimeoutError);
    for (const cause of CAUSES) assert.match(error.message, cause);
    await holder.close();
  } finally {
    await qemu.stop();
  }
});

test("no greeting from a guest agent taken for a monitor: the agent is among the causes named", async () => {
  const qga = await startQga();
  try {
    const error = await rejectionOf(connect(qga.qgaPath, { greetingTimeoutMs: 300, logger: silentLogger }));
    assert.instance(error, GreetingTimeoutError);
    assert.match(error.message, CAUSES[2]!);
  } finally {
    await qga.stop();
  }
});

test.run();
