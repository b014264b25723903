/**
 * The two readers of client JSON (pass-through's strict scanner, the
 * proxy's streamer and parser) are built from the same parts, so on strict
 * JSON they must say the same thing QEMU would: the same first complaint
 * (an escape QEMU refuses, a code point it will not decode, a duplicate
 * key), or none. And the replies qmpx writes itself put the id where id
 * placement finds QEMU's place for it.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withCallerId } from '../../lib/qemu-json/id-placement.js';
import { parseTokenGroup } from '../../lib/qemu-json/parser.js';
import { errorReplyText, returnReplyText } from '../../lib/qemu-json/replies.js';
import { scanJson } from '../../lib/qemu-json/strict-scan.js';
import { QemuJsonStreamer } from '../../lib/qemu-json/streamer.js';
import type { TokenGroup } from '../../lib/qemu-json/tokens.js';
import { propertyRuns } from '../helpers/property-runs.js';

/** What the proxy's reader makes of one message: QEMU's complaint, or null. */
function proxyComplaint(text: string): string | null {
  const groups: TokenGroup[] = [];
  const errors: string[] = [];
  const streamer = new QemuJsonStreamer({ group: (group) => groups.push(group), error: (desc) => errors.push(desc), oversize: () => errors.push('oversize') });
  streamer.push(Buffer.from(text, 'utf8'));
  if (errors.length > 0) return errors[0]!;
  assert.is(groups.length, 1, text);
  const parsed = parseTokenGroup(groups[0]!);
  return parsed.ok ? null : parsed.desc;
}

/** What pass-through's reader makes of it. */
function passThroughComplaint(text: string): string | null {
  const scanned = scanJson(text);
  if (!scanned.ok) throw new Error(`${text}: ${scanned.reason}`);
  return scanned.qemuError;
}

const STRING_PIECES = ['a', 'é', '\\u00e9', '\\ud800', '\\udc00', '\\ud83d\\ude00', '\\ud800\\u0041', '\\ufffe', '\\ufdd0', '\ufffe', '\ufdd5', '😀', '\\n', '\\"', '\\/', ' '];
const jsonString = fc.array(fc.constantFrom(...STRING_PIECES), { maxLength: 4 }).map((pieces) => `"${pieces.join('')}"`);
const key = fc.oneof(fc.constantFrom('"a"', '"b"', '"id"', '"\\u0061"'), jsonString);
const value: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    jsonString,
    fc.constantFrom('1', '-0', '1e3', '18446744073709551616', 'true', 'null'),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
    fc.array(fc.tuple(key, tie('value')), { maxLength: 3 }).map((members) => `{${members.map(([k, v]) => `${k}:${v}`).join(',')}}`),
  ),
})).value;
const message = fc.array(fc.tuple(key, value), { maxLength: 4 }).map((members) => `{${members.map(([k, v]) => `${k}: ${v}`).join(', ')}}`);

test('on strict JSON both readers report the same first complaint, or none (property)', () => {
  let complaints = 0;
  fc.assert(
    fc.property(message, (text) => {
      const expected = passThroughComplaint(text);
      if (expected !== null) complaints++;
      assert.is(proxyComplaint(text), expected, text);
    }),
    { seed: 14, numRuns: 3000 },
  );
  assert.ok(complaints > 300, `${complaints} inputs drew a complaint`);
});

test('both readers refuse past the nesting limit with the same text', () => {
  const deep = `{"a":${'['.repeat(1024)}${']'.repeat(1024)}}`;
  assert.is(passThroughComplaint(deep), 'JSON nesting depth limit exceeded');
  assert.is(proxyComplaint(`{"a":${'['.repeat(1024)}`), 'JSON nesting depth limit exceeded');
  assert.is(passThroughComplaint(`{"a":${'['.repeat(1023)}${']'.repeat(1023)}}`), null);
  assert.is(proxyComplaint(`{"a":${'['.repeat(1023)}${']'.repeat(1023)}}`), null);
});

test('replies written in QEMU’s place put the id where id placement puts it in QEMU’s own (property)', () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), fc.option(fc.json(), { nil: undefined }), fc.json(), (errorClass, desc, idJson, valueJson) => {
      assert.is(errorReplyText({ errorClass, desc, idJson }), withCallerId(errorReplyText({ errorClass, desc }), false, idJson));
      assert.is(returnReplyText(valueJson, idJson), withCallerId(returnReplyText(valueJson), false, idJson));
    }),
    { seed: 14, numRuns: propertyRuns(1000) },
  );
});

test.run();
