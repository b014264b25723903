/**
 * Which message the fds of a read belong to (lib/proxy/client-fds.ts): the
 * last one whose first byte is in that read, held until it is complete;
 * fds of a read in which no message begins are closed at once. The
 * streamer is QEMU's message splitter, as in a session.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientFds, MAX_FDS_PER_COMMAND, type InputItem } from '../../lib/proxy/client-fds.js';
import { QemuJsonStreamer } from '../../lib/qemu-json/streamer.js';

/** A streamer and ClientFds wired as QmpSession wires them; `read` is one recvmsg. */
function session() {
  const closed: number[] = [];
  const items: InputItem[] = [];
  const fds = new ClientFds((list) => closed.push(...list));
  const streamer = new QemuJsonStreamer({
    group: (tokens) => {
      const item: InputItem = { kind: 'group', tokens };
      items.push(item);
      fds.completed(item);
    },
    error: (desc) => {
      const item: InputItem = { kind: 'error', desc };
      items.push(item);
      fds.completed(item);
    },
    oversize: () => undefined,
    outOfBudget: () => undefined,
  });
  return {
    closed,
    items,
    fds,
    read(text: string, received: number[] = [], truncated = false): void {
      fds.beforePush(received, truncated, streamer.midMessage);
      streamer.push(Buffer.from(text));
      fds.afterPush(streamer.midMessage);
    },
    /** The fds each complete message got, in order. */
    assigned(): Array<number[] | undefined> {
      return items.map((item) => item.fds?.fds);
    },
  };
}

test('one command per read: its fds', () => {
  const s = session();
  s.read('{"execute":"getfd","arguments":{"fdname":"a"}}', [10]);
  s.read('{"execute":"query-status"}');
  assert.equal(s.assigned(), [[10], undefined]);
  assert.equal(s.closed, []);
});

test('two commands in one read: the fds go to the second (the write they came with began last)', () => {
  const s = session();
  s.read('{"execute":"query-status"}{"execute":"add-fd"}', [11]);
  assert.equal(s.assigned(), [undefined, [11]]);
});

test("a read that finishes one command and holds the next whole: the next one's", () => {
  const s = session();
  s.read('{"execute":"query-');
  s.read('status"}{"execute":"getfd","arguments":{"fdname":"b"}}', [12]);
  assert.equal(s.assigned(), [undefined, [12]]);
  assert.equal(s.closed, []);
});

test('a command split across reads keeps the fds of the read it began in until it is complete', () => {
  const s = session();
  s.read('{"execute":"getfd",', [13]);
  assert.equal(s.items.length, 0);
  assert.is(s.fds.heldCount, 1);
  s.read('"arguments":{"fdname":"c"}}');
  assert.equal(s.assigned(), [[13]]);
  assert.is(s.fds.heldCount, 0);
});

test('fds of a read in which no message begins are closed at once', () => {
  const s = session();
  s.read('{"execute":"getfd",');
  s.read('"arguments":{"fdname":', [14]);
  s.read('"d"}}');
  assert.equal(s.assigned(), [undefined]);
  assert.equal(s.closed, [14]);
});

test('fds held for an unfinished message are closed when the client leaves', () => {
  const s = session();
  s.read('{"execute":"add-fd","argu', [15, 16]);
  s.fds.closeWaiting();
  assert.equal(s.closed, [15, 16]);
  assert.is(s.fds.heldCount, 0);
});

test('a message QEMU will refuse takes the fds it began with (the session closes them when it answers)', () => {
  const s = session();
  s.read('{"execute": }', [17]);
  s.read('{"execute": "query-status"}');
  assert.equal(s.assigned(), [[17], undefined]);
});

test('past the cap (the kernel truncated, or reads added up): marked over the cap', () => {
  const s = session();
  s.read('{"execute":"add-fd"}', [18], true);
  assert.ok(s.items[0]!.fds?.overCap);
  const many = Array.from({ length: MAX_FDS_PER_COMMAND + 1 }, (_, index) => 100 + index);
  s.read('{"execute":"add-fd"}', many);
  assert.ok(s.items[1]!.fds?.overCap);
  s.read('{"execute":"add-fd"}', many.slice(0, MAX_FDS_PER_COMMAND));
  assert.not.ok(s.items[2]!.fds?.overCap);
});

test.run();
