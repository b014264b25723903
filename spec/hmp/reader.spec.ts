import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HmpReader, MAX_BANNER_BYTES, type HmpReaderSink } from '../../lib/hmp/reader.js';
import { BANNER, PROMPT, qemuEcho } from './hmp-wire.js';

// Verbatim from QEMU 7.2.22 (docs/monitor-facts.md §3).
const STOP_ECHO = 's\x1b[K\x1b[Dst\x1b[K\x1b[D\x1b[Dsto\x1b[K\x1b[D\x1b[D\x1b[Dstop\x1b[K\r\n';
const MTREE_OUTPUT =
  'address-space: memory\r\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\r\n\r\n' +
  'address-space: I/O\r\n  0000000000000000-000000000000ffff (prio 0, i/o): io\r\n\r\n';

type Event = [kind: string, text: string];

function recorder(maxOutputBytes = 1 << 20): { reader: HmpReader; events: Event[] } {
  const events: Event[] = [];
  const sink: HmpReaderSink = {
    banner: (text) => events.push(['banner', text]),
    notBanner: (seen) => events.push(['notBanner', seen]),
    reply: (output) => events.push(['reply', output]),
    unexpected: (text) => events.push(['unexpected', text]),
    oversize: (bytes, limit) => events.push(['oversize', `${bytes}>${limit}`]),
  };
  return { reader: new HmpReader(sink, { maxOutputBytes }), events };
}

type Split = 'whole' | 'bytes' | 'threes';

function feed(reader: HmpReader, data: string | Buffer, split: Split): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const size = split === 'whole' ? bytes.length : split === 'bytes' ? 1 : 3;
  for (let offset = 0; offset < bytes.length; offset += size) reader.push(bytes.subarray(offset, offset + size));
}

/** Runs a banner and then each [line, wire bytes of its reply] through a fresh reader, split as told. */
function session(replies: [line: string, wire: string | Buffer][], split: Split): Event[] {
  const { reader, events } = recorder();
  feed(reader, BANNER + PROMPT, split);
  for (const [line, wire] of replies) {
    reader.expectReply(line === '');
    feed(reader, wire, split);
  }
  return events;
}

function sameForEverySplit(replies: [string, string | Buffer][]): Event[] {
  const whole = session(replies, 'whole');
  assert.equal(session(replies, 'bytes'), whole, 'byte by byte gives the same events as whole');
  assert.equal(session(replies, 'threes'), whole, 'three bytes at a time gives the same events as whole');
  return whole;
}

test('the banner ends at the first prompt; the prompt is not part of it', () => {
  assert.equal(sameForEverySplit([]), [['banner', BANNER]]);
});

test('echo is stripped and output returned exactly, CRLF kept; a command without output gives empty text', () => {
  const events = sameForEverySplit([
    ['info status', `${qemuEcho('info status')}VM status: paused (prelaunch)\r\n${PROMPT}`],
    ['stop', `${STOP_ECHO}${PROMPT}`],
    ['info mtree', `${qemuEcho('info mtree')}${MTREE_OUTPUT}${PROMPT}`],
  ]);
  assert.equal(events, [
    ['banner', BANNER],
    ['reply', 'VM status: paused (prelaunch)\r\n'],
    ['reply', ''],
    ['reply', MTREE_OUTPUT],
  ]);
});

test('the echo helper matches QEMU\'s captured bytes for "stop"', () => {
  assert.is(qemuEcho('stop'), STOP_ECHO);
});

test('an empty line is echoed as a bare CRLF and has no output', () => {
  assert.equal(sameForEverySplit([['', `\r\n${PROMPT}`]]), [['banner', BANNER], ['reply', '']]);
});

test('a whitespace-only line is echoed with redraws like any other', () => {
  assert.equal(sameForEverySplit([['   ', `${qemuEcho('   ')}${PROMPT}`]]), [['banner', BANNER], ['reply', '']]);
});

test('a peer that does not echo (a qmpx proxy): the first command finds the prompt with no ESC before it; output kept whole', () => {
  const events = sameForEverySplit([
    ['info status', `VM status: paused (prelaunch)\r\n${PROMPT}`],
    ['stop', PROMPT],
    ['', PROMPT],
    ['info mtree', `${MTREE_OUTPUT}${PROMPT}`],
  ]);
  assert.equal(events, [['banner', BANNER], ['reply', 'VM status: paused (prelaunch)\r\n'], ['reply', ''], ['reply', ''], ['reply', MTREE_OUTPUT]]);
});

test('a silent first command on a peer that does not echo is recognised too', () => {
  assert.equal(sameForEverySplit([['stop', PROMPT], ['info status', `VM status: paused (prelaunch)\r\n${PROMPT}`]]), [
    ['banner', BANNER],
    ['reply', ''],
    ['reply', 'VM status: paused (prelaunch)\r\n'],
  ]);
});

test('"(qemu) " inside a line, or a prefix of it at a line start, does not end the output', () => {
  const output = 'look: (qemu) here\r\n(qemu)\r\n(qem\r\n';
  const events = sameForEverySplit([['x', `${qemuEcho('x')}${output}${PROMPT}`]]);
  assert.equal(events.at(-1), ['reply', output]);
});

test('UTF-8 output split anywhere is decoded whole', () => {
  const output = Buffer.concat([Buffer.from(qemuEcho('x'), 'latin1'), Buffer.from('naïve – ✓ 日本\r\n', 'utf8'), Buffer.from(PROMPT)]);
  const events = sameForEverySplit([['x', output]]);
  assert.equal(events.at(-1), ['reply', 'naïve – ✓ 日本\r\n']);
});

test('the quadratic echo of a long line is discarded as it streams and does not count toward the output limit', () => {
  const line = 'x'.repeat(1500);
  const echo = qemuEcho(line);
  assert.ok(echo.length > 3_000_000, `echo is ${echo.length} bytes`);
  const { reader, events } = recorder(64);
  feed(reader, BANNER + PROMPT, 'whole');
  reader.expectReply(false);
  const wire = Buffer.from(`${echo}unknown command: 'x'\r\n${PROMPT}`, 'latin1');
  for (let offset = 0; offset < wire.length; offset += 65536) reader.push(wire.subarray(offset, offset + 65536));
  assert.equal(events, [['banner', BANNER], ['reply', "unknown command: 'x'\r\n"]]);
});

test('output past the limit closes the reader with oversize', () => {
  const { reader, events } = recorder(100);
  feed(reader, BANNER + PROMPT, 'whole');
  reader.expectReply(false);
  feed(reader, `${qemuEcho('info')}${'y'.repeat(101)}`, 'whole');
  assert.equal(events.at(-1), ['oversize', '101>100']);
  reader.push(Buffer.from(`\r\n${PROMPT}`));
  assert.is(events.length, 2, 'nothing after oversize');
});

test('a finished output over the limit is refused too', () => {
  const { reader, events } = recorder(10);
  feed(reader, BANNER + PROMPT, 'whole');
  reader.expectReply(false);
  feed(reader, `${qemuEcho('info')}${'y'.repeat(20)}\r\n${PROMPT}`, 'whole');
  assert.equal(events.at(-1), ['oversize', '22>10']);
});

test('bytes while no command is outstanding are reported as unexpected', () => {
  const { reader, events } = recorder();
  feed(reader, `${BANNER}${PROMPT}surprise\r\n`, 'whole');
  assert.equal(events, [['banner', BANNER], ['unexpected', 'surprise\r\n']]);
  assert.not.ok(reader.awaitingReply);
});

test('a QMP greeting is not a banner: refused at the first byte that differs', () => {
  for (const split of ['whole', 'bytes'] as const) {
    const { reader, events } = recorder();
    feed(reader, '{"QMP": {"version": {}}}\r\n', split);
    assert.equal(events.length, 1, split);
    assert.is(events[0]![0], 'notBanner');
    assert.ok(events[0]![1].startsWith('{'), split);
  }
});

test('text that starts like a banner but never prompts is refused past MAX_BANNER_BYTES', () => {
  const { reader, events } = recorder();
  feed(reader, `QEMU ${'z'.repeat(MAX_BANNER_BYTES)}`, 'whole');
  assert.equal(events.map(([kind]) => kind), ['notBanner']);
});

test('one command at a time: expectReply while a reply is awaited throws', () => {
  const { reader } = recorder();
  feed(reader, BANNER + PROMPT, 'whole');
  reader.expectReply(false);
  assert.ok(reader.awaitingReply);
  assert.throws(() => reader.expectReply(false), /while echo/);
});

test('end() hands back unfinished output, and nothing for a half echo', () => {
  const { reader } = recorder();
  feed(reader, BANNER + PROMPT, 'whole');
  reader.expectReply(false);
  feed(reader, `${qemuEcho('info mtree')}address-space: mem`, 'whole');
  assert.is(reader.end(), 'address-space: mem');

  const second = recorder();
  feed(second.reader, BANNER + PROMPT, 'whole');
  second.reader.expectReply(false);
  feed(second.reader, 'q\x1b[K\x1b[Dqu', 'whole');
  assert.is(second.reader.end(), '');
});

test.run();
