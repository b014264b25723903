/**
 * The QEMU-compatible stream cutter: the same messages whether the input
 * comes whole or byte by byte (every parser is checked both ways), and QEMU's cut points.
 * (Its agreement with QEMU itself is checked in spec/proxy/qmp-session.spec.ts.)
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDouble } from '../../lib/qemu-json/numbers.js';
import { parseTokenGroup } from '../../lib/qemu-json/parser.js';
import { toQemuJson } from '../../lib/qemu-json/print.js';
import { QemuJsonStreamer } from '../../lib/qemu-json/streamer.js';
import { tokenTexts, type TokenGroup } from '../../lib/qemu-json/tokens.js';
import { decodeBytesLikeQemu } from '../../lib/qemu-json/unicode.js';
import { toWireJson } from '../../lib/qemu-json/wire.js';

function cut(chunks: Array<string | Buffer>, maxMessageBytes?: number): string[] {
  const out: string[] = [];
  const streamer = new QemuJsonStreamer(
    {
      group: (group) => out.push(`group ${tokenTexts(group).join(' ')}`),
      error: (desc) => out.push(`error ${desc}`),
      oversize: (bytes, limit) => out.push(`oversize ${bytes} ${limit}`),
    },
    maxMessageBytes,
  );
  for (const chunk of chunks) streamer.push(chunk);
  return out;
}

const bytewise = (text: string): string[] => [...Buffer.from(text, 'latin1')].map((byte) => String.fromCharCode(byte));

test('cut points: objects, scalars at top level, strays and recovery, negative depth', () => {
  const input = `{"a":[1,2]}42 "s"'q'{"x" % {"y":1}}:}\n]`;
  assert.equal(cut([input]), [
    'group { "a" : [ 1 , 2 ] }',
    'group 42',
    'group "s"',
    "group 'q'",
    "error JSON parse error, stray '%'",
    'group { "y" : 1 }',
    'group }',
    'group :',
    'group }',
    'group ]',
  ]);
});

test('a number at the end of the input waits for the byte after it, as QEMU’s lexer does', () => {
  assert.equal(cut(['{"a":1} 42']), ['group { "a" : 1 }']);
  assert.equal(cut(['{"a":1} 42', '\n']), ['group { "a" : 1 }', 'group 42']);
});

test('nesting past 1024 is refused and the rest counted from zero', () => {
  const out = cut([`${'['.repeat(1026)}${']'.repeat(1026)}`]);
  assert.is(out[0], 'error JSON nesting depth limit exceeded');
  // The 1,025th '[' is dropped with the error; the 1,026th opens a fresh message, closed by the first ']'.
  assert.is(out[1], 'group [ ]');
  assert.is(out.length, 2 + 1025);
  assert.ok(out.slice(2).every((line) => line === 'group ]'));
});

test('whole input and byte-by-byte input give the same messages (property)', () => {
  const pieces = ['{', '}', '[', ']', ':', ',', ' ', '\n', '"a"', "'b'", '1', '-2.5e3', 'true', 'nul', '%', '\x01', '\xff', '"\\"', '"\xc3\xa9"', '\\'];
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 40 }), (parts) => {
      const text = `${parts.join('')}\n`;
      assert.equal(cut(bytewise(text)), cut([text]));
    }),
    { seed: 7, numRuns: 500 },
  );
});

test('a message over the limit is reported once and the stream closed', () => {
  const whole = cut([`{"a":"${'x'.repeat(100)}"}{"b":1}`], 64);
  assert.is(whole.length, 1);
  assert.match(whole[0]!, /^oversize \d+ 64$/);
  const split = cut(['{"a":', '"xxxxxxxxxxxxxxxxxxxxxxxxxxxx"', ',"b":"xxxxxxxxxxxxxxxxxxxxxxxxxxxx"}', '{"c":1}'], 64);
  assert.is(split.length, 1);
  assert.match(split[0]!, /^oversize \d+ 64$/);
});

test('values: wire JSON keeps number tokens, QEMU JSON re-prints them as QEMU does', () => {
  const groups: TokenGroup[] = [];
  new QemuJsonStreamer({ group: (group) => groups.push(group), error: () => undefined, oversize: () => undefined }).push(
    `{"n":[1e3,1.0,-0,18446744073709551615,18446744073709551616,123456789012345678901234567890],'s':'it\\'s \\u00e9'}\n`,
  );
  const parsed = parseTokenGroup(groups[0]!);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.is(
    toWireJson(parsed.value),
    '{"n":[1e3,1.0,-0,18446744073709551615,18446744073709551616,123456789012345678901234567890],"s":"it\'s é"}',
  );
  assert.is(
    toQemuJson(parsed.value),
    '{"n": [1000, 1, 0, 18446744073709551615, 1.8446744073709552e+19, 1.2345678901234568e+29], "s": "it\'s \\u00E9"}',
  );
});

test('%.17g as QEMU prints doubles', () => {
  assert.is(formatDouble(0.1), '0.10000000000000001');
  assert.is(formatDouble(1e-7), '9.9999999999999995e-08');
  assert.is(formatDouble(123456.789e3), '123456789');
  assert.is(formatDouble(0.0001), '0.0001');
  assert.is(formatDouble(1e17), '1e+17');
  assert.is(formatDouble(-Infinity), '-inf');
});

test('raw bytes in error texts: invalid UTF-8 shown as U+FFFD, cut at NUL', () => {
  assert.is(decodeBytesLikeQemu('a\xc3\xa9b'), 'aéb');
  assert.is(decodeBytesLikeQemu('\xfe'), '\ufffd');
  assert.is(decodeBytesLikeQemu('x\0y'), 'x');
});

test.run();
