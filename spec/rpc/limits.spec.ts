/**
 * What a libvirt client may make the endpoint hold: a call larger than any
 * procedure served here needs is refused from its length word; partial
 * frames are charged to the process-wide budget; the connection limit
 * closes extra clients at once.
 */
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { silentLogger } from '../../lib/log.js';
import { ConnectionLimiter } from '../../lib/net/connection-limit.js';
import { MemoryBudget } from '../../lib/net/memory-budget.js';
import { RpcProgram } from '../../lib/rpc/protocol.js';
import { DEFAULT_MAX_CALL_BYTES, startLibvirtEndpoint, type LibvirtEndpointOptions } from '../../lib/rpc/server.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { LogWatch } from './endpoint-harness.js';

const DEADLINE_MS = 10_000;

async function endpointWith(options: Partial<LibvirtEndpointOptions>) {
  const dir = createTempDir('rpc-limits');
  const log = new LogWatch();
  const endpoint = await startLibvirtEndpoint({ path: socketPathIn(dir, 'libvirt.sock'), domains: () => [], logger: log, ...options });
  return {
    endpoint,
    log,
    async stop(): Promise<void> {
      await endpoint.close();
      await removeTempDir(dir);
    },
  };
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closedWithin(socket: Socket, deadlineMs = DEADLINE_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error(`connection still open after ${deadlineMs} ms`)), deadlineMs);
    socket.on('data', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A CALL header whose length word announces `frameBytes`. */
function callHeader(frameBytes: number): Buffer {
  const header = Buffer.alloc(28);
  header.writeUInt32BE(frameBytes, 0);
  header.writeUInt32BE(RpcProgram.REMOTE, 4);
  header.writeUInt32BE(1, 8);
  header.writeInt32BE(1, 12);
  return header;
}

test('a call announced larger than one 4 MiB string plus 64 KiB is refused from its length word, with the log line', async () => {
  const served = await endpointWith({});
  try {
    const socket = await open(served.endpoint.path);
    socket.write(callHeader(DEFAULT_MAX_CALL_BYTES + 4 + 1));
    await closedWithin(socket);
    assert.ok(served.log.count('libvirt client sent unframeable data; disconnecting it') >= 1);
    // A call of the largest size allowed is still taken (the connection waits for its body).
    const allowed = await open(served.endpoint.path);
    allowed.write(callHeader(DEFAULT_MAX_CALL_BYTES + 4));
    allowed.write(Buffer.alloc(1024 * 1024));
    await new Promise((resolve) => allowed.write(Buffer.alloc(0), resolve));
    assert.not.ok(allowed.destroyed);
    allowed.destroy();
  } finally {
    await served.stop();
  }
});

test('partial frames are charged to the process budget: past it the holder is disconnected; closing gives it all back', async () => {
  const budget = new MemoryBudget(1024 * 1024, 64 * 1024);
  const served = await endpointWith({ budget });
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const socket = await open(served.endpoint.path);
      sockets.push(socket);
      socket.on('data', () => undefined);
      socket.on('error', () => undefined);
      socket.write(callHeader(DEFAULT_MAX_CALL_BYTES));
      socket.write(Buffer.alloc(2 * 1024 * 1024));
    }
    await served.log.waitFor('libvirt client sent unframeable data; disconnecting it');
    const refusal = served.log.lines.find((line) => line.message.startsWith('libvirt client sent unframeable data'))!;
    assert.is((refusal.fields as { reason?: string }).reason, 'input-overflow');
    assert.ok(budget.used <= budget.limitBytes);
    for (const socket of sockets) socket.destroy();
    const deadline = Date.now() + DEADLINE_MS;
    while (budget.used > 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    assert.is(budget.used, 0);
  } finally {
    for (const socket of sockets) socket.destroy();
    await served.stop();
  }
});

test('the connection limit closes a client over it at once and admits one again after a slot is freed', async () => {
  const connections = new ConnectionLimiter({ maxConnections: 10, maxConnectionsPerSocket: 1 }, silentLogger);
  const served = await endpointWith({ connections });
  try {
    const first = await open(served.endpoint.path);
    const second = await open(served.endpoint.path);
    await closedWithin(second);
    assert.is(connections.connections, 1);
    first.destroy();
    const deadline = Date.now() + DEADLINE_MS;
    while (connections.connections > 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    const third = await open(served.endpoint.path);
    // Served: CONNECT_OPEN (name null, flags 0) is answered.
    const answered = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply to CONNECT_OPEN')), DEADLINE_MS);
      third.once('data', (data: Buffer) => {
        clearTimeout(timer);
        resolve(data);
      });
      third.once('close', () => reject(new Error('closed instead of served')));
    });
    const call = Buffer.concat([callHeader(36), Buffer.alloc(8)]);
    call.writeUInt32BE(7, 20);
    third.write(call);
    const reply = await answered;
    assert.is(reply.readUInt32BE(20), 7, 'the reply carries the call serial');
    third.destroy();
  } finally {
    connections.close();
    await served.stop();
  }
});

/** Sends CONNECT_OPEN (name null, flags 0) with `serial`; resolves with the reply's serial. */
function connectOpen(socket: Socket, serial: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reply to CONNECT_OPEN')), DEADLINE_MS);
    socket.once('data', (data: Buffer) => {
      clearTimeout(timer);
      resolve(data.readUInt32BE(20));
    });
    socket.once('close', () => reject(new Error('closed instead of served')));
    const call = Buffer.concat([callHeader(36), Buffer.alloc(8)]);
    call.writeUInt32BE(serial, 20);
    socket.write(call);
  });
}

test('a message left half sent past the timeout disconnects its client; an idle client with nothing half sent stays', async () => {
  const served = await endpointWith({ partialFrameTimeoutMs: 200 });
  const idle = await open(served.endpoint.path);
  try {
    const stalled = await open(served.endpoint.path);
    stalled.write(callHeader(1000).subarray(0, 10));
    await closedWithin(stalled);
    assert.is(served.log.count('libvirt client left a message unfinished; disconnecting it'), 1);
    assert.is(await connectOpen(idle, 41), 41);
  } finally {
    idle.destroy();
    await served.stop();
  }
});

test.run();
