/**
 * Fuzzing the endpoint's connections over its real socket, in front of a
 * real QEMU: random bytes and mutations of every client message in the
 * captures (bit flips, truncations, changed header words and length words,
 * spliced messages), each case on its own connection after a valid
 * AUTH_LIST + CONNECT_OPEN. The endpoint is read-only, so a mutation that
 * happens to spell a monitor command cannot change QEMU.
 *
 * Whatever the bytes: every message the server sends is a well-formed
 * REPLY or MESSAGE of a known program; no handler fails with anything but
 * a libvirt error (nothing reaches the "failed unexpectedly" log); when the
 * client ends its side the server closes the connection within the
 * deadline (nothing hangs on a partial frame); and afterwards a fresh
 * client is still served. fast-check's seed is printed on failure.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { remoteProcedures } from '../../lib/rpc/catalog.js';
import { emptyBody } from '../../lib/rpc/messages.js';
import { MessageType, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';
import { CAPTURE_LOGS, readCaptureLog } from './capture-log.js';
import { startEndpoint, type Endpoint } from './endpoint-harness.js';
import { RpcTestClient } from './rpc-client.js';

const FUZZ_RUNS = 150;
let endpoint: Endpoint;

/** Every client → server message of every capture, raw. */
const seeds: Buffer[] = CAPTURE_LOGS.flatMap((file) => readCaptureLog(file, () => true).filter((m) => m.direction === 'C->S').map((m) => m.raw));
const openPrefix = Buffer.concat(
  readCaptureLog('mitm-raw.log', () => true)
    .filter((m) => m.direction === 'C->S' && m.connection === 'c2' && (m.proc === RemoteProc.AUTH_LIST || m.proc === RemoteProc.CONNECT_OPEN) && m.prog === RpcProgram.REMOTE)
    .map((m) => m.raw),
);

test.before(async () => {
  endpoint = await startEndpoint({ readOnly: true });
});
test.after(async () => {
  await endpoint.close();
});

/** One mutation of a seed message. */
const mutated = fc
  .tuple(fc.constantFrom(...seeds), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom('flip', 'truncate', 'word', 'length', 'splice', 'extend'))
  .map(([seed, position, bit, word, kind]) => {
    const bytes = Buffer.from(seed);
    switch (kind) {
      case 'flip':
        bytes[position % bytes.length]! ^= 1 << bit % 8;
        return bytes;
      case 'truncate':
        return bytes.subarray(0, position % bytes.length);
      case 'word': {
        const offset = 4 * (position % Math.max(1, Math.floor(bytes.length / 4)));
        bytes.writeUInt32BE(word, offset);
        return bytes;
      }
      case 'length':
        bytes.writeUInt32BE(word % (bytes.length * 2 + 64), 0);
        return bytes;
      case 'splice':
        return Buffer.concat([bytes.subarray(0, position % bytes.length), seeds[bit % seeds.length]!]);
      default:
        return Buffer.concat([bytes, Buffer.alloc(position % 64, word & 0xff)]);
    }
  });

const input = fc.array(fc.oneof(mutated, fc.uint8Array({ maxLength: 256 }).map((bytes) => Buffer.from(bytes))), { minLength: 1, maxLength: 4 });

let casesRun = 0;

async function runCase(parts: Buffer[]): Promise<void> {
  casesRun++;
  const client = await RpcTestClient.connect(endpoint.socketPath);
  try {
    client.writeRaw(openPrefix);
    for (const part of parts) client.writeRaw(part);
    client.socket.end();
    await client.waitForEnd();
    // The test client's FrameDecoder throws (failing the run) on anything the server sends that is not a frame.
    for (const message of client.received) {
      if (message.header.type === MessageType.MESSAGE) assert.ok(message.header.prog === RpcProgram.QEMU || message.header.prog === RpcProgram.KEEPALIVE);
      else assert.is(message.header.type, MessageType.REPLY);
    }
  } finally {
    client.close();
  }
}

test('random and mutated frames: libvirt errors or a closed connection, never a crash or a hang', async () => {
  await fc.assert(fc.asyncProperty(input, runCase), { numRuns: FUZZ_RUNS, verbose: true });
  assert.ok(casesRun >= FUZZ_RUNS, `${casesRun} cases run`);
  assert.is(endpoint.log.count('libvirt call failed unexpectedly'), 0, JSON.stringify(endpoint.log.lines.filter((l) => l.level === 'error')));
});

test('the endpoint still serves a fresh client after the fuzzing', async () => {
  const client = await RpcTestClient.connect(endpoint.socketPath);
  try {
    await client.call(RpcProgram.REMOTE, RemoteProc.CONNECT_OPEN, remoteProcedures.connectOpen.args, { name: null, flags: 0 }, emptyBody);
    const type = await client.call(RpcProgram.REMOTE, RemoteProc.CONNECT_GET_TYPE, emptyBody, undefined, remoteProcedures.connectGetType.reply);
    assert.equal(type, { type: 'QEMU' });
  } finally {
    client.close();
  }
  assert.is((await endpoint.other.execute<{ status: string }>('query-status')).status, 'prelaunch');
});

test.run();
