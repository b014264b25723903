import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QgaReader } from '../../lib/qga/reader.js';

type Event = [kind: 'message' | 'synced' | 'garbage' | 'oversize', text: string];

interface Run {
  events: Event[];
  discarded: string[];
}

type Split = 'whole' | 'bytes' | 'fives';

/** Feeds `wire` through a fresh reader awaiting sync `syncId` (or none), split as told. */
function run(wire: Buffer | string, split: Split, syncId?: number, maxMessageBytes?: number): Run {
  const result: Run = { events: [], discarded: [] };
  const reader = new QgaReader(
    {
      message: (text) => result.events.push(['message', text]),
      synced: () => result.events.push(['synced', '']),
      discarded: (text) => result.discarded.push(text),
      garbage: (text) => result.events.push(['garbage', text]),
      oversize: (bytes, limit) => result.events.push(['oversize', `${bytes}>${limit}`]),
    },
    { maxMessageBytes },
  );
  if (syncId !== undefined) reader.awaitSync(syncId);
  const bytes = typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire;
  const size = split === 'whole' ? bytes.length : split === 'bytes' ? 1 : 5;
  for (let offset = 0; offset < bytes.length; offset += size) reader.push(bytes.subarray(offset, offset + size));
  return result;
}

/** The events for `wire`, checked to be the same whole, byte by byte and five bytes at a time. */
function events(wire: Buffer | string, syncId?: number): Event[] {
  const whole = run(wire, 'whole', syncId).events;
  assert.equal(run(wire, 'bytes', syncId).events, whole, 'byte by byte');
  assert.equal(run(wire, 'fives', syncId).events, whole, 'five bytes at a time');
  return whole;
}

test('outside a resync, LF-terminated objects are messages', () => {
  assert.equal(events('{"return": {}, "id": 1}\n{"return": 1795643773269479000, "id": 2}\n'), [
    ['message', '{"return": {}, "id": 1}'],
    ['message', '{"return": 1795643773269479000, "id": 2}'],
  ]);
});

test('the sync reply after its sentinel completes the resync; what follows in the same chunk is framed normally', () => {
  assert.equal(events('\xff{"return": 67890}\n{"return": {}, "id": 1}\n', 67890), [
    ['synced', ''],
    ['message', '{"return": {}, "id": 1}'],
  ]);
});

test('everything before the sentinel is discarded unread: stale replies, our flush byte\'s parse error, lines', () => {
  const wire =
    '{"return": {}, "id": 41}\n' +
    '{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'\\uFFFD\'"}}\n' +
    'not json at all\n' +
    '\xff{"return": 5}\n';
  const result = run(wire, 'whole', 5);
  assert.equal(result.events, [['synced', '']]);
  assert.ok(result.discarded.join('').includes('"id": 41'), 'the stale reply was reported as discarded');
  assert.equal(events(wire, 5), [['synced', '']]);
});

test('a stale sync reply with another id is skipped, and so is whatever follows it until the next sentinel', () => {
  const wire = '\xff{"return": 12}\n{"return": 5}\n\xff{"return": 5}\n';
  assert.equal(events(wire, 5), [['synced', '']], 'the unsentinelled {"return": 5} did not count');
});

test('a half object cut off by a sentinel does not swallow the sync reply', () => {
  const wire = '\xff{"return": {"partial": "never clos\xff{"return": 7}\n';
  assert.equal(events(wire, 7), [['synced', '']]);
});

test('the sync reply must be exactly {"return": ID}: nothing else after a sentinel completes it', () => {
  assert.equal(events('\xff{"return": "7"}\n\xff{"error": {"class": "GenericError", "desc": "x"}}\n', 7), []);
  assert.equal(events('\xff{"return": 7}\n', 8), []);
});

test('outside a resync, a 0xFF and stray text are garbage', () => {
  assert.equal(events('\xff{"return": {}, "id": 1}\nhello\n'), [
    ['garbage', '\xff'],
    ['message', '{"return": {}, "id": 1}'],
    ['garbage', 'hello'],
  ]);
});

test('awaitSync() mid-stream drops a half-received object', () => {
  const result: Event[] = [];
  const reader = new QgaReader({
    message: (text) => result.push(['message', text]),
    synced: () => result.push(['synced', '']),
    discarded: () => undefined,
    garbage: (text) => result.push(['garbage', text]),
    oversize: () => result.push(['oversize', '']),
  });
  reader.push(Buffer.from('{"return": {"half'));
  reader.awaitSync(3);
  assert.ok(reader.syncing);
  reader.push(Buffer.from('\xff{"return": 3}\n{"return": {}, "id": 9}\n', 'latin1'));
  assert.not.ok(reader.syncing);
  assert.equal(result, [['synced', ''], ['message', '{"return": {}, "id": 9}']]);
});

test('a message past maxMessageBytes is refused, during a resync too', () => {
  assert.equal(run(`{"return": "${'x'.repeat(100)}"}\n`, 'whole', undefined, 64).events.map(([kind]) => kind), ['oversize']);
  assert.equal(run(`\xff{"return": "${'x'.repeat(100)}"}\n`, 'whole', 1, 64).events.map(([kind]) => kind), ['oversize']);
});

test('stale bytes before any sentinel are never held, however many', () => {
  const stale = Buffer.alloc(1 << 20, 'y');
  const result = run(Buffer.concat([stale, Buffer.from('\xff{"return": 1}\n', 'latin1')]), 'whole', 1, 64);
  assert.equal(result.events, [['synced', '']], 'a megabyte of junk did not trip the 64-byte limit');
});

test.run();
