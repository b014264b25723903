import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JsonObjectFramer } from '../../lib/qmp/framer.js';
import { propertyRuns } from '../helpers/property-runs.js';

interface Collected {
  messages: string[];
  garbage: string[];
  sentinels: number;
  oversize: Array<[number, number]>;
  partial: string;
}

/** Feeds `chunks` to a fresh framer and collects everything it reports. */
function frame(chunks: Buffer[], maxMessageBytes?: number): Collected {
  const out: Collected = { messages: [], garbage: [], sentinels: 0, oversize: [], partial: '' };
  const framer = new JsonObjectFramer(
    {
      message: (text) => out.messages.push(text),
      garbage: (text) => out.garbage.push(text),
      sentinel: () => out.sentinels++,
      oversize: (bytes, limit) => out.oversize.push([bytes, limit]),
    },
    { maxMessageBytes },
  );
  for (const chunk of chunks) framer.push(chunk);
  out.partial = framer.end();
  return out;
}

function byteByByte(input: Buffer): Buffer[] {
  return [...input].map((byte) => Buffer.from([byte]));
}

/** Every framer test: the whole input at once, then byte by byte, must agree. */
function frameBothWays(input: string | Buffer, maxMessageBytes?: number): Collected {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const whole = frame([bytes], maxMessageBytes);
  const single = frame(byteByByte(bytes), maxMessageBytes);
  assert.equal(single.messages, whole.messages, 'byte-by-byte messages differ from whole-input messages');
  assert.equal(single.sentinels, whole.sentinels);
  assert.equal(single.partial, whole.partial);
  assert.equal(single.oversize.length, whole.oversize.length);
  return whole;
}

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}';

test('CRLF-terminated compact lines, several per chunk', () => {
  const out = frameBothWays(`${GREETING}\r\n{"return": {}}\r\n{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n`);
  assert.equal(out.messages, [GREETING, '{"return": {}}', '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}']);
  assert.equal(out.garbage, []);
  assert.is(out.partial, '');
});

test('LF-only lines (guest agent) and blank lines', () => {
  const out = frameBothWays('\n\n{"return": 12345}\n\r\n\n{"return": {}}\n');
  assert.equal(out.messages, ['{"return": 12345}', '{"return": {}}']);
  assert.equal(out.garbage, []);
});

test('objects back to back without any line end', () => {
  const out = frameBothWays('{"a": 1}{"b": [1, {"c": 2}]}{}');
  assert.equal(out.messages, ['{"a": 1}', '{"b": [1, {"c": 2}]}', '{}']);
});

test("pretty=on output: one object over many CRLF lines, 4-space indent", () => {
  const pretty = '{\r\n    "return": {\r\n        "status": "prelaunch",\r\n        "running": false\r\n    }\r\n}\r\n';
  const out = frameBothWays(pretty + pretty);
  assert.is(out.messages.length, 2);
  assert.equal(JSON.parse(out.messages[0]!), { return: { status: 'prelaunch', running: false } });
});

test('braces and quotes inside strings do not end the object', () => {
  const tricky = '{"return": "} { \\" ] [ \\\\", "x": "\\\\"}';
  const out = frameBothWays(tricky + '\r\n' + tricky);
  assert.equal(out.messages, [tricky, tricky]);
  assert.equal(JSON.parse(out.messages[0]!), { return: '} { " ] [ \\', x: '\\' });
});

test('UTF-8 inside strings survives any split', () => {
  const text = '{"return": "héllo – 東京 🎉"}';
  const out = frameBothWays(text + '\n');
  assert.equal(out.messages, [text]);
});

test('0xFF outside an object is a sentinel, inside a string it is content', () => {
  const input = Buffer.concat([Buffer.from([0xff]), Buffer.from('{"return": 67890}\n')]);
  const out = frameBothWays(input);
  assert.is(out.sentinels, 1);
  assert.equal(out.messages, ['{"return": 67890}']);
});

test('garbage between objects is reported, objects after it still frame', () => {
  const out = frameBothWays('hello\r\n{"return": {}}\r\n[1,2]\r\n{"return": 1}\r\n');
  assert.equal(out.messages, ['{"return": {}}', '{"return": 1}']);
  assert.equal(out.garbage, ['hello', '[1,2]']);
});

test('a connection ending mid-object returns the partial tail and emits nothing for it', () => {
  const out = frameBothWays('{"return": {}}\r\n{"return": {"status": "run');
  assert.equal(out.messages, ['{"return": {}}']);
  assert.is(out.partial, '{"return": {"status": "run');
});

test('an object over maxMessageBytes reports oversize and closes the framer', () => {
  const big = `{"return": "${'x'.repeat(1000)}"}\r\n{"return": {}}\r\n`;
  const out = frameBothWays(big, 100);
  assert.is(out.oversize.length, 1);
  assert.is(out.oversize[0]![1], 100);
  assert.equal(out.messages, [], 'nothing after an oversize message is framed');
});

test('an object exactly at the limit is accepted', () => {
  const text = `{"return": "${'y'.repeat(50)}"}`;
  const out = frameBothWays(text, text.length);
  assert.equal(out.messages, [text]);
  assert.is(out.oversize.length, 0);
});

test('endless garbage without a line end is reported in bounded pieces', () => {
  const out = frame([Buffer.alloc(20_000, 0x41)]);
  assert.ok(out.garbage.length >= 4);
  assert.ok(out.garbage.every((piece) => piece.length <= 4096));
});

const jsonObject = fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 6 }).map((value) => JSON.stringify(value));

test('property: any chunking of a valid stream yields the same objects', () => {
  fc.assert(
    fc.property(
      fc.array(jsonObject, { minLength: 1, maxLength: 8 }),
      fc.constantFrom('\r\n', '\n', '', ' \r\n\r\n'),
      fc.array(fc.nat(), { maxLength: 12 }),
      (objects, separator, cutPoints) => {
        const stream = Buffer.from(objects.join(separator) + separator, 'utf8');
        const cuts = [...new Set(cutPoints.map((point) => point % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let previous = 0;
        for (const cut of cuts) {
          chunks.push(stream.subarray(previous, cut));
          previous = cut;
        }
        chunks.push(stream.subarray(previous));
        const out = frame(chunks);
        assert.equal(out.messages, objects);
        assert.equal(out.garbage, []);
      },
    ),
    { numRuns: 500 },
  );
});

test('unparsedPrefix: such lines come unparsed only while the sink takes them, whatever their length', () => {
  const run = (takes: boolean): Array<[string, boolean]> => {
    const out: Array<[string, boolean]> = [];
    const framer = new JsonObjectFramer(
      {
        message: (text, parsed) => out.push([text, parsed !== undefined]),
        garbage: () => undefined,
        oversize: () => undefined,
        takesUnparsed: () => takes,
      },
      { unparsedPrefix: '{"return": ' },
    );
    const long = `{"return": "${'x'.repeat(100_000)}"}`;
    framer.push(Buffer.from(`{"return": {"a": "}"}}\r\n{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n{"return": 1, }\r\n${long}\r\n`));
    return out;
  };
  assert.equal(
    run(true).map(([text, parsed]) => [text.slice(0, 24), parsed]),
    [
      ['{"return": {"a": "}"}}', false],
      ['{"timestamp": {"seconds"', true],
      ['{"return": 1, }', false],
      ['{"return": "xxxxxxxxxxxx', false],
    ],
    'the scan frames them (a brace in a string, invalid JSON) and hands them over as text',
  );
  assert.equal(
    run(false).map(([, parsed]) => parsed),
    [true, true, false, true],
    'not taken: parsed as usual; invalid JSON is framed by the scan as before',
  );
});

test('property: random bytes never throw out of the framer', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 16 }), (chunks) => {
      const out = frame(chunks.map((chunk) => Buffer.from(chunk)), 256);
      for (const message of out.messages) assert.is(message[0], '{');
    }),
    { numRuns: propertyRuns(1000) },
  );
});

test.run();
