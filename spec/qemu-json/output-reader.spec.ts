/**
 * The readers for QEMU output that JSON.parse refuses: `inf`, `-inf`,
 * `nan` and `-nan` are the doubles QEMU printed; everything JSON reads they
 * read the same; member spans are found whatever the values hold.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseJsonLossless } from '../../lib/qmp/json.js';
import { MAX_OUTPUT_NESTING } from '../../lib/qemu-json/limits.js';
import { readableMembers, scanTopLevelMembers } from '../../lib/qemu-json/output-members.js';
import { readQemuOutput } from '../../lib/qemu-json/output-reader.js';
import { propertyRuns } from '../helpers/property-runs.js';

test('the four tokens QEMU prints for non-finite doubles are read as the values it meant, anywhere a number goes', () => {
  const value = readQemuOutput('{"return": {"a": inf, "b": [-inf, nan, -nan], "c": {"d": -nan}}}') as { return: Record<string, unknown> };
  assert.is(value.return.a, Infinity);
  const [minus, nan, minusNan] = value.return.b as number[];
  assert.is(minus, -Infinity);
  assert.ok(Number.isNaN(nan) && Number.isNaN(minusNan));
  assert.ok(Number.isNaN((value.return.c as { d: number }).d));
});

test('pretty output (CRLF, indent) reads the same as compact', () => {
  const compact = readQemuOutput('{"return": {"x": inf}, "id": 3}');
  const pretty = readQemuOutput('{\r\n    "return": {\r\n        "x": inf\r\n    },\r\n    "id": 3\r\n}');
  assert.equal(pretty, compact);
});

test('what is not JSON besides those tokens is refused with its position; nesting is bounded', () => {
  for (const text of ['{"a": infinity}', '{"a": Inf}', '{"a": nan1}', '{"a": 1,}', '{"a" 1}', '{"a": 1} x', '{"a": "open']) {
    assert.throws(() => readQemuOutput(text), (error: unknown) => error instanceof SyntaxError && /at position \d+/.test(error.message), text);
  }
  const deep = `${'['.repeat(MAX_OUTPUT_NESTING + 1)}${']'.repeat(MAX_OUTPUT_NESTING + 1)}`;
  assert.throws(() => readQemuOutput(deep), /nesting deeper/);
  assert.equal(readQemuOutput(`${'['.repeat(MAX_OUTPUT_NESTING)}${']'.repeat(MAX_OUTPUT_NESTING)}`) !== undefined, true);
});

test('a key __proto__ is a member, as JSON.parse makes it', () => {
  const value = readQemuOutput('{"__proto__": {"polluted": inf}}') as Record<string, unknown>;
  assert.ok(Object.hasOwn(value, '__proto__'));
  assert.is(({} as Record<string, unknown>).polluted, undefined);
});

test('property: on JSON, the reader gives what the lossless JSON parser gives (big integers as bigint)', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.boolean(), (value, pretty) => {
      const text = JSON.stringify(value, null, pretty ? 4 : undefined);
      assert.equal(readQemuOutput(text), parseJsonLossless(text));
    }),
    { numRuns: propertyRuns(2000) },
  );
});

test('property: member spans hold each value, for any values, tokens QEMU prints included', () => {
  const leaf = fc.oneof(fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)), fc.constantFrom('inf', '-inf', 'nan', '-nan'));
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(fc.string(), leaf), { selector: ([key]) => key, maxLength: 6 }), fc.constantFrom(', ', ',\r\n    '), (members, separator) => {
      const text = `{${members.map(([key, valueText]) => `${JSON.stringify(key)}: ${valueText}`).join(separator)}}`;
      const scanned = scanTopLevelMembers(text);
      assert.ok(scanned !== null, text);
      assert.equal(
        scanned.map((member) => [member.key, text.slice(member.start, member.end)]),
        members,
      );
      assert.is(text.slice(scanned[0]?.keyStart ?? 1, (scanned[0]?.keyStart ?? 1) + 1), members.length > 0 ? '"' : '}');
    }),
    { numRuns: propertyRuns(2000) },
  );
});

test('a broken object: no complete member list, but the keys before the break are readable', () => {
  assert.is(scanTopLevelMembers('{"return": 1, }'), null);
  assert.equal(readableMembers('{"return": 1, }').map(({ key }) => key), ['return']);
  assert.equal(readableMembers('{"id": 7, "error": {"class": @}}').map(({ key }) => key), ['id', 'error']);
  assert.equal(readableMembers('{foo}'), []);
  assert.equal(readableMembers('[1, 2]'), []);
});

test.run();
