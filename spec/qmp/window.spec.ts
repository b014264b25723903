/**
 * The in-band window, driven byte-exactly through an in-memory stream: at
 * most maxInFlight commands written, and once the window is full it is
 * refilled when half of it has been answered, in one write. And the wire
 * text of one command.
 */
import { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { silentLogger } from '../../lib/index.js';
import fc from 'fast-check';
import { QmpMonitor } from '../../lib/qmp/client.js';
import { wireCommand } from '../../lib/qmp/wire.js';
import { propertyRuns } from '../helpers/property-runs.js';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';
const RETURN = '{"return": {}}\r\n';

/** A stream whose writes are recorded, one entry per write call; negotiation is answered on the spot. */
function recordingStream(): { socket: Duplex; writes: string[]; reply(text: string): void } {
  const writes: string[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.toString());
      if (chunk.toString().includes('qmp_capabilities')) queueMicrotask(() => socket.emit('data', Buffer.from(RETURN)));
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.map(({ chunk }) => String(chunk)).join(''));
      callback();
    },
  });
  return { socket, writes, reply: (text) => socket.emit('data', Buffer.from(text)) };
}

/** A QmpMonitor on a recording stream, greeted and negotiated. */
async function negotiatedMonitor(): Promise<{ monitor: QmpMonitor; writes: string[]; reply(text: string): void }> {
  const { socket, writes, reply } = recordingStream();
  const monitor = new QmpMonitor(socket, { logger: silentLogger }, 'window');
  const started = monitor.start(Buffer.alloc(0), 5000);
  reply(GREETING);
  await started;
  return { monitor, writes, reply };
}

function commandsIn(writes: readonly string[]): number {
  return writes.join('').split('\n').filter((line) => line.includes('"query-status"')).length;
}

test('a full window is refilled once half of it is answered, in one write', async () => {
  const { monitor, writes, reply } = await negotiatedMonitor();
  const results = Array.from({ length: 20 }, () => monitor.execute('query-status'));
  assert.is(commandsIn(writes), 8, 'the first eight are written');
  reply(RETURN.repeat(3));
  assert.is(commandsIn(writes), 8, 'three answered: still waiting');
  const before = writes.length;
  reply(RETURN);
  assert.is(commandsIn(writes), 12, 'half answered: refilled to eight in flight');
  assert.is(writes.length, before + 1, 'the refill is one write');
  reply(RETURN.repeat(4));
  assert.is(commandsIn(writes), 16);
  reply(RETURN.repeat(16));
  assert.is(commandsIn(writes), 20);
  assert.equal(await Promise.all(results), Array.from({ length: 20 }, () => ({})));
  await monitor.close();
});

test('below a full window every command is written at once', async () => {
  const { monitor, writes, reply } = await negotiatedMonitor();
  const first = Array.from({ length: 5 }, () => monitor.execute('query-status'));
  assert.is(commandsIn(writes), 5);
  reply(RETURN);
  const more = monitor.execute('query-status');
  assert.is(commandsIn(writes), 6, 'a window that never filled has no hysteresis');
  reply(RETURN.repeat(5));
  await Promise.all([...first, more]);
  await monitor.close();
});

test('wire text: any command name is a JSON string, as JSON.stringify writes it (property)', () => {
  fc.assert(
    fc.property(fc.oneof(fc.stringMatching(/^[\w-]{1,20}$/), fc.string(), fc.string({ unit: 'binary' })), fc.boolean(), (name, oob) => {
      const text = wireCommand(name, '{"a":1}', oob, oob ? 7 : undefined);
      assert.is(text, `{"${oob ? 'exec-oob' : 'execute'}":${JSON.stringify(name)},"arguments":{"a":1}${oob ? ',"id":7' : ''}}\n`);
    }),
    { seed: 3, numRuns: propertyRuns(2000) },
  );
});

test('wire text without arguments: the same for a name asked again (kept) as the first time, id and exec-oob never taken from it (property)', () => {
  fc.assert(
    fc.property(fc.oneof(fc.constantFrom('query-status', 'stop', 'cont'), fc.stringMatching(/^[\w-]{1,20}$/), fc.string()), (name) => {
      const expected = `{"execute":${JSON.stringify(name)}}\n`;
      assert.is(wireCommand(name, undefined, false), expected);
      assert.is(wireCommand(name, undefined, false), expected);
      assert.is(wireCommand(name, undefined, false, 9), `{"execute":${JSON.stringify(name)},"id":9}\n`);
      assert.is(wireCommand(name, undefined, true, 9), `{"exec-oob":${JSON.stringify(name)},"id":9}\n`);
      assert.is(wireCommand(name, '{}', false), `{"execute":${JSON.stringify(name)},"arguments":{}}\n`);
    }),
    { seed: 5, numRuns: propertyRuns(2000) },
  );
});

test.run();
