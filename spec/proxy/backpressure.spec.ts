/**
 * Back-pressure toward a client that reads slowly: past half its buffer
 * unread, its input is paused and none of its commands run; the answers to
 * what it had already sent are never a reason to drop it, so a client that
 * pipelines and reads late gets everything, in order. Only events, which
 * cannot be paused, disconnect a client that stops reading for good.
 */
import { connect as connectSocket, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_MAX_PENDING_PER_CLIENT } from '../../lib/proxy/session.js';
import { qmpEvent, startFakePeer } from '../helpers/fake-peer.js';
import { eventually, serveQemu, serveUpstream, type Served } from './harness.js';

/** A client socket that reads nothing until `readAll()`; its close is recorded. */
class LateReader {
  closed = false;
  private text = '';

  private constructor(readonly socket: Socket) {
    socket.on('error', () => undefined);
    socket.once('close', () => (this.closed = true));
  }

  static async open(path: string): Promise<LateReader> {
    const socket = connectSocket(path);
    socket.pause();
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new LateReader(socket);
  }

  /** Starts reading; resolves with everything read once `done(text)` holds, within `timeoutMs`. */
  async readAll(done: (text: string) => boolean, timeoutMs: number): Promise<string> {
    this.socket.setEncoding('latin1');
    this.socket.on('data', (text: string) => (this.text += text));
    this.socket.resume();
    await eventually(() => done(this.text) || this.closed, 'everything read', timeoutMs);
    return this.text;
  }
}

/**
 * The proxy holds the client's remaining commands and has nothing of anyone
 * upstream: it has paused that client, and will do nothing more for it
 * until it reads.
 */
function holdingTheClient(served: Served): boolean {
  return served.proxy.upstream.current?.qmp?.pendingCount === 0 && served.proxy.pendingCount > 0;
}

/** The proxy dropped a client for not reading (a paused client socket does not see its close). */
function droppedAClient(served: Served): boolean {
  return served.logger.entries.some((entry) => entry.message.includes('not reading'));
}

test('60 × query-qmp-schema pipelined, read only once the proxy has paused the client: all 60 replies, in order, no disconnect', async () => {
  const served = await serveQemu();
  try {
    const count = 60;
    const client = await LateReader.open(served.qmpPath);
    let commands = '{"execute":"qmp_capabilities"}\n';
    for (let i = 0; i < count; i++) commands += `{"execute":"query-qmp-schema","id":${i}}\n`;
    client.socket.write(commands);
    // ~186 KB per reply, 11 MB in all: more than the 8 MiB buffer, so the proxy must pause this client.
    await eventually(() => holdingTheClient(served) || droppedAClient(served), 'the client paused', 60_000);
    assert.not.ok(droppedAClient(served), 'the client was disconnected before it read');
    const text = await client.readAll((received) => received.includes(`"id": ${count - 1}}\r\n`), 60_000);
    assert.not.ok(client.closed, 'the client was disconnected while it read');
    const lines = text.split('\r\n').slice(2, -1);
    assert.is(lines.length, count);
    lines.forEach((line, index) => {
      assert.ok(line.startsWith('{"return": [{"name": "'), `reply ${index} is a schema`);
      assert.ok(line.endsWith(`"id": ${index}}`), `reply ${index} in its place`);
    });
    assert.is(lines[count - 1], lines[0]!.replace(/"id": 0}$/, `"id": ${count - 1}}`));
    assert.not.ok(droppedAClient(served));
    client.socket.destroy();
  } finally {
    await served.stop();
  }
});

test('HMP: 200 × help typed ahead, read only once the proxy has paused the client: every output, in order, no disconnect', async () => {
  // 11 KB of output per line, 2.2 MB in all, against a 64 KiB buffer.
  const served = await serveQemu({ hmp: true, maxClientBufferBytes: 64 * 1024 });
  try {
    const count = 200;
    const client = await LateReader.open(served.hmpPath);
    client.socket.write('help\n'.repeat(count));
    await eventually(() => holdingTheClient(served) || droppedAClient(served), 'the client paused', 60_000);
    assert.not.ok(droppedAClient(served), 'the client was disconnected before it read');
    const prompts = (text: string): number => text.split('(qemu) ').length - 1;
    const text = await client.readAll((received) => prompts(received) >= 1 + count, 60_000);
    assert.not.ok(client.closed, 'the client was disconnected while it read');
    const outputs = text.split('(qemu) ').slice(1, -1);
    assert.is(outputs.length, count);
    assert.ok(outputs[0]!.length > 10_000, 'help is long');
    for (const output of outputs) assert.is(output, outputs[0]);
    assert.not.ok(droppedAClient(served));
    client.socket.destroy();
  } finally {
    await served.stop();
  }
});

test('a client that stops reading for good is still disconnected by events, however many replies it was owed', async () => {
  const reply = { return: 'x'.repeat(100_000) };
  const events = 60_000;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const peer = await startFakePeer();
  peer.autoRespond({ 'query-large': reply });
  peer.waitUntil(released, 'the client paused').flood(events, (index) => qmpEvent('BALLOON_CHANGE', { actual: index }));
  const served = await serveUpstream(peer.path, { name: 'vm', maxClientBufferBytes: 1024 * 1024 });
  try {
    const reader = await served.negotiatedClient();
    const stalled = await LateReader.open(served.qmpPath);
    // 40 replies of 100 KB: 4 MB owed to a client with a 1 MiB buffer, more than it can be sent before the pause.
    stalled.socket.write(`{"execute":"qmp_capabilities"}\n${'{"execute":"query-large"}\n'.repeat(40)}`);
    await eventually(() => holdingTheClient(served) || droppedAClient(served), 'the client paused', 30_000);
    assert.not.ok(droppedAClient(served), 'replies alone disconnected the client');
    release();
    const entry = await served.logger.waitFor('client is not reading', 30_000);
    assert.is(entry.level, 'warn');
    stalled.socket.resume();
    await eventually(() => stalled.closed, 'the stalled client closed', 10_000);
    const lines = (await reader.waitForLines(2 + events, 30_000)).slice(2);
    assert.is(lines.length, events);
    assert.is(JSON.parse(lines[events - 1]!).data.actual, events - 1);
    await reader.close();
    await peer.done();
  } finally {
    await served.stop();
    await peer.close();
  }
});

test('answers held behind a command still upstream are bounded: past maxPendingCommands the client waits, then gets all, in order', async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const peer = await startFakePeer();
  peer.autoRespond({});
  peer.expect('query-slow').waitUntil(released, 'the test').reply({ return: { slow: true } });
  const served = await serveUpstream(peer.path, { name: 'vm' });
  try {
    const client = await served.negotiatedClient();
    const count = 10_000;
    // Each `[]` is answered by the proxy itself, but only after the reply to query-slow.
    await client.send(`{"execute":"query-slow","id":"slow"}\n${'[]\n'.repeat(count)}`);
    // Held in the client's input, not in a growing queue of answers: its commands wait.
    await eventually(() => served.proxy.pendingCount > 1, 'the client held back', 10_000);
    release();
    const lines = (await client.waitForLines(2 + 1 + count, 30_000)).slice(2);
    assert.is(lines[0], '{"return": {"slow": true}, "id": "slow"}');
    assert.is(lines.length, 1 + count);
    for (const line of lines.slice(1)) assert.is(line, lines[1]);
    assert.ok(lines[1]!.startsWith('{"error": {"class": "GenericError"'), lines[1]);
    await client.close();
    await peer.done();
  } finally {
    await served.stop();
    await peer.close();
  }
});

test('a client that always has commands upstream: replies already written are not kept', async () => {
  const served = await serveQemu();
  try {
    const client = await served.negotiatedClient();
    // The reply queue is private; its length is what memory it holds.
    const replyQueueLength = (): number => {
      const sessions = (served.proxy as unknown as { sessions: Set<{ slots?: unknown[] }> }).sessions;
      return Math.max(0, ...[...sessions].map((session) => session.slots?.length ?? 0));
    };
    let longest = 0;
    client.socket.on('data', () => (longest = Math.max(longest, replyQueueLength())));
    const count = 5000;
    let commands = '';
    for (let i = 0; i < count; i++) commands += `{"execute":"query-status","id":${i}}\n`;
    await client.send(commands);
    const lines = (await client.waitForLines(2 + count, 60_000)).slice(2);
    assert.is(lines[count - 1], `{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": ${count - 1}}`);
    // Answered entries are dropped once they are most of the queue: a few thousand at most, not one per command.
    assert.ok(longest <= 2 * 1024 + 2 * DEFAULT_MAX_PENDING_PER_CLIENT, `the reply queue grew to ${longest}`);
    await client.close();
  } finally {
    await served.stop();
  }
});

test.run();
