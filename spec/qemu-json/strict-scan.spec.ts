import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { MAX_NESTING, MAX_TOKEN_BYTES, MAX_TOKEN_COUNT } from '../../lib/qemu-json/limits.js';
import { scanJson, type ScannedJson } from '../../lib/qemu-json/strict-scan.js';
import { propertyRuns } from '../helpers/property-runs.js';

function scanned(text: string): ScannedJson {
  const result = scanJson(text);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(text.slice(0, 80))} to scan, got: ${result.reason} at ${result.position}`);
  return result;
}

function syntaxError(text: string): string {
  const result = scanJson(text);
  if (result.ok) throw new Error(`expected ${JSON.stringify(text)} to be refused`);
  return `${result.reason} at position ${result.position}`;
}

function nested(depth: number, inner = '1'): string {
  return '['.repeat(depth) + inner + ']'.repeat(depth);
}

test('text that is not JSON is refused with a reason and the position of the problem', () => {
  const cases: [string, string][] = [
    ['query-status', "JSON value expected but got 'q' at position 0"],
    ['', 'JSON value expected but reached end of input at position 0'],
    ['   ', 'JSON value expected but reached end of input at position 3'],
    ['{"execute":', 'JSON value expected but reached end of input at position 11'],
    ['{"execute":"query-status"} {"x":1}', "Expected end of input but got '{' at position 27"],
    ['[1,2', "Comma ',' or end of array ']' expected but reached end of input at position 4"],
    ['[1,]', "JSON value expected but got ']' at position 3"],
    ['{"a":1,}', "Quoted object key expected but got '}' at position 7"],
    ["{'a':1}", "Quoted object key expected but got ''' at position 1"],
    ['{"a" 1}', "Colon ':' expected after property name but got '1' at position 5"],
    ['{"a":1 "b":2}', "Comma ',' or end of object '}' expected but got '\"' at position 7"],
    ['{"a":"\u0001"}', 'String character expected but got U+0001 at position 6'],
    ['"abc', "End of string '\"' expected but reached end of input at position 4"],
    ['"\\x"', "Escape character expected but got 'x' at position 2"],
    ['"\\u12G4"', "Four hex digits expected but got '1' at position 3"],
    ['-a', "Digit expected but got 'a' at position 1"],
    ['01', "Expected end of input but got '1' at position 1"],
    ['1.', "Expected end of input but got '.' at position 1"],
    ['tru', "JSON value expected but got 't' at position 0"],
    ['NaN', "JSON value expected but got 'N' at position 0"],
    ['\ufeff{}', "JSON value expected but got '\ufeff' at position 0"],
  ];
  for (const [text, expected] of cases) assert.is(syntaxError(text), expected, JSON.stringify(text));
});

test('the top-level object: members in document order with decoded keys and raw value spans', () => {
  const text = '{ "\\u0069d" : [1, 2] ,"execute":"qu\\u0065ry-status", "arguments" : { "a" : 1.50 } , "n": null }';
  const result = scanned(text);
  assert.is(result.kind, 'object');
  assert.equal(
    result.members.map((member) => [member.key, member.kind, text.slice(member.start, member.end), text.slice(member.keyStart, member.keyStart + 1)]),
    [
      ['id', 'array', '[1, 2]', '"'],
      ['execute', 'string', '"qu\\u0065ry-status"', '"'],
      ['arguments', 'object', '{ "a" : 1.50 }', '"'],
      ['n', 'literal', 'null', '"'],
    ],
  );
  assert.is(result.members[1]!.stringValue, 'query-status');
  assert.is(result.qemuError, null);
  assert.equal(scanned('[1, {"a": 2}]').members, []);
  assert.is(scanned(' -0.5e+3 ').kind, 'number');
  assert.is(scanned('"x"').kind, 'string');
});

test('duplicate keys at any depth are what QEMU refuses, found after the member value as QEMU does', () => {
  assert.is(scanned('{"execute":"a","execute":"a"}').qemuError, 'JSON parse error, duplicate key');
  assert.is(scanned('{"x":{"a":1,"b":{},"a":1}}').qemuError, 'JSON parse error, duplicate key');
  assert.is(scanned('{"a":1,"\\u0061":2}').qemuError, 'JSON parse error, duplicate key', 'keys compare decoded');
  assert.is(scanned('[{"a":1},{"a":1}]').qemuError, null, 'sibling objects are separate');
  // A bad string inside the duplicate member's value comes first; one before it too.
  assert.is(scanned('{"a":1,"a":"\\ud800"}').qemuError, 'JSON parse error, \\ud800 is not a valid Unicode character');
  assert.is(scanned('{"a":1,"a":2,"b":"\\ud800"}').qemuError, 'JSON parse error, duplicate key');
});

test('strings QEMU will not decode: surrogates and noncharacters, escaped or raw', () => {
  const cases: [string, string | null][] = [
    ['"\\ud800"', 'JSON parse error, \\ud800 is not a valid Unicode character'],
    ['"\\uD800"', 'JSON parse error, \\uD800 is not a valid Unicode character'],
    ['"\\udc00"', 'JSON parse error, \\udc00 is not a valid Unicode character'],
    ['"\\ud800\\u0041"', 'JSON parse error, \\ud800 is not a valid Unicode character'],
    ['"\\ud800\\ud800"', 'JSON parse error, \\ud800 is not a valid Unicode character'],
    ['"\\ud800x"', 'JSON parse error, \\ud800 is not a valid Unicode character'],
    ['"\\udbff\\udfff"', 'JSON parse error, \\udbff\\udfff is not a valid Unicode character'],
    ['"\\uffff"', 'JSON parse error, \\uffff is not a valid Unicode character'],
    ['"\\ufdd0"', 'JSON parse error, \\ufdd0 is not a valid Unicode character'],
    ['"\uffff"', 'JSON parse error, invalid UTF-8 sequence in string'],
    ['"\ufdef"', 'JSON parse error, invalid UTF-8 sequence in string'],
    ['"\u{1fffe}"', 'JSON parse error, invalid UTF-8 sequence in string'],
    ['"\ud800"', 'JSON parse error, invalid UTF-8 sequence in string'],
    ['"\\u0000 \\ud83d\\ude00 \\ufffd \ufffd \u{1f600}"', null],
    ['{"\\ud800":1}', 'JSON parse error, \\ud800 is not a valid Unicode character'],
  ];
  for (const [text, expected] of cases) assert.is(scanned(text).qemuError, expected, text);
});

test("nesting: QEMU's limit is 1,024 open brackets and braces together", () => {
  assert.is(scanned(nested(MAX_NESTING)).qemuError, null);
  assert.is(scanned(nested(MAX_NESTING + 1)).qemuError, 'JSON nesting depth limit exceeded');
  const inObject = (depth: number): string => `{"execute":"query-status","arguments":{"a":${nested(depth)}}}`;
  assert.is(scanned(inObject(MAX_NESTING - 2)).qemuError, null);
  assert.is(scanned(inObject(MAX_NESTING - 1)).qemuError, 'JSON nesting depth limit exceeded');
  // Far deeper than any call stack would allow: the scanner does not recurse.
  assert.is(scanned(nested(200_000)).qemuError, 'JSON nesting depth limit exceeded');
  // Stream limits are checked as tokens arrive, before parsing: they win over a duplicate key.
  assert.is(scanned(`{"a":1,"a":${nested(MAX_NESTING)}}`).qemuError, 'JSON nesting depth limit exceeded');
});

test("token count: QEMU refuses more than 2^21 tokens (whitespace is not a token)", () => {
  const array = (items: number): string => `[${Array(items).fill('0').join(', ')}]`;
  // n items: n values, n-1 commas, 2 brackets.
  const itemsAtLimit = (MAX_TOKEN_COUNT - 1) / 2;
  const atLimit = scanned(`${array(Math.floor(itemsAtLimit))} `);
  assert.is(atLimit.tokenCount, MAX_TOKEN_COUNT - 1);
  assert.is(atLimit.qemuError, null);
  // `[[]` + `,0` × j + `]`: 2j + 4 tokens.
  const exact = scanned(`[[]${',0'.repeat((MAX_TOKEN_COUNT - 4) / 2)}]`);
  assert.is(exact.tokenCount, MAX_TOKEN_COUNT);
  assert.is(exact.qemuError, null);
  const over = scanned(array(Math.ceil(itemsAtLimit)));
  assert.is(over.tokenCount, MAX_TOKEN_COUNT + 1);
  assert.is(over.qemuError, 'JSON token count limit exceeded');
});

test('token size: QEMU refuses a message whose tokens reach 64 MiB (bytes, not characters)', () => {
  const withString = (total: number, char: string, charBytes: number): string => {
    const prefix = '{"execute":"query-status","arguments":{"a":"';
    const suffix = '"}}';
    return prefix + char.repeat((total - prefix.length - suffix.length) / charBytes) + suffix;
  };
  const below = scanned(withString(MAX_TOKEN_BYTES - 1, 'x', 1));
  assert.is(below.tokenBytes, MAX_TOKEN_BYTES - 1);
  assert.is(below.qemuError, null);
  assert.is(scanned(withString(MAX_TOKEN_BYTES, 'x', 1)).qemuError, 'JSON token size limit exceeded');
  // 'é' is two bytes in UTF-8: half the characters reach the same limit.
  const prefixBytes = '{"execute":"query-status","arguments":{"a":"'.length + 3;
  const twoByte = scanned(`{"execute":"query-status","arguments":{"a":"${'é'.repeat((MAX_TOKEN_BYTES - prefixBytes) / 2 + 1)}"}}`);
  assert.ok(twoByte.tokenBytes >= MAX_TOKEN_BYTES);
  assert.is(twoByte.qemuError, 'JSON token size limit exceeded');
  // Whitespace is not counted.
  assert.is(scanned(`${' '.repeat(MAX_TOKEN_BYTES)}{}`).tokenBytes, 2);
});

/** JSON texts, pretty or compact, and texts one edit away from them. */
const jsonishText = fc.oneof(
  fc.json(),
  fc.tuple(fc.json(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', '\\', '{', '[', ' ', '0', '-', '.', 'e', '\u0001')).map(
    ([text, at, insert]) => {
      const index = text.length === 0 ? 0 : at % text.length;
      return text.slice(0, index) + insert + text.slice(index + (at % 2));
    },
  ),
  fc.string(),
);

test('property: the scanner accepts exactly the texts JSON.parse accepts', () => {
  fc.assert(
    fc.property(jsonishText, (text) => {
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      const result = scanJson(text);
      assert.is(result.ok, parses, JSON.stringify(text));
      if (!result.ok) assert.ok(result.position >= 0 && result.position <= text.length);
    }),
    { numRuns: propertyRuns(3000) },
  );
});

test('property: top-level keys and values are those JSON.parse sees, in document order', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.boolean(), (object, pretty) => {
      const text = JSON.stringify(object, null, pretty ? 2 : undefined);
      const result = scanned(text);
      assert.equal(result.members.map((member) => member.key), Object.keys(object));
      for (const member of result.members) {
        assert.equal(JSON.parse(text.slice(member.start, member.end)), JSON.parse(JSON.stringify(object[member.key])));
      }
    }),
    { numRuns: 500 },
  );
});

test.run();
