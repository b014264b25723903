import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { LosslessNumber } from 'lossless-json';
import { ProtocolError } from '../../lib/errors.js';
import { withCallerId } from '../../lib/qemu-json/id-placement.js';
import { formatLikeQemu, quoteLikeQemu } from '../../lib/qemu-json/print.js';
import { errorReplyText, returnReplyText } from '../../lib/qemu-json/replies.js';

test('an id-less compact reply gets the caller id where QEMU puts it: last in a return, first in an error', () => {
  assert.is(withCallerId('{"return": {}}', false, '"a"'), '{"return": {}, "id": "a"}');
  assert.is(withCallerId('{"return": [1, {"id": 2}]}', false, '7'), '{"return": [1, {"id": 2}], "id": 7}');
  assert.is(
    withCallerId('{"error": {"class": "GenericError", "desc": "x"}}', false, '{ "a" :1e3 }'),
    '{"id": { "a" :1e3 }, "error": {"class": "GenericError", "desc": "x"}}',
  );
  assert.is(withCallerId('{"return": {}}', false, undefined), '{"return": {}}', 'no id given: the text untouched');
});

test('a pretty reply gets the id on its own line, indented as QEMU indents members', () => {
  assert.is(withCallerId('{\r\n    "return": {\r\n    }\r\n}', false, '1'), '{\r\n    "return": {\r\n    },\r\n    "id": 1\r\n}');
  assert.is(
    withCallerId('{\r\n    "error": {\r\n        "class": "GenericError",\r\n        "desc": "x"\r\n    }\r\n}', false, '"i"'),
    '{\r\n    "id": "i",\r\n    "error": {\r\n        "class": "GenericError",\r\n        "desc": "x"\r\n    }\r\n}',
  );
});

test("the wire id QEMU echoed is replaced by the caller's, or removed with its separator", () => {
  assert.is(withCallerId('{"return": {}, "id": 12}', true, '[1,2]'), '{"return": {}, "id": [1,2]}');
  assert.is(withCallerId('{"return": {}, "id": 12}', true, undefined), '{"return": {}}');
  assert.is(withCallerId('{"id": 12, "error": {"class": "C", "desc": "d"}}', true, '"x"'), '{"id": "x", "error": {"class": "C", "desc": "d"}}');
  assert.is(withCallerId('{"id": 12, "error": {"class": "C", "desc": "d"}}', true, undefined), '{"error": {"class": "C", "desc": "d"}}');
  assert.is(withCallerId('{\r\n    "return": 5,\r\n    "id": 3\r\n}', true, undefined), '{\r\n    "return": 5\r\n}');
  assert.is(withCallerId('{\r\n    "id": 3,\r\n    "error": 5\r\n}', true, undefined), '{\r\n    "error": 5\r\n}');
});

test('a reply qmpx cannot place an id in is a ProtocolError, not a wrong answer', () => {
  assert.throws(() => withCallerId('[1]', false, '1'), (error: unknown) => error instanceof ProtocolError);
  assert.throws(() => withCallerId('{"return": {}}', true, '1'), (error: unknown) => error instanceof ProtocolError && /has no id/.test(error.message));
});

test("replies qmpx builds itself are written as QEMU writes them", () => {
  assert.is(errorReplyText({ errorClass: 'GenericError', desc: "QMP input member 'f\u00f6' is unexpected" }), `{"error": {"class": "GenericError", "desc": "QMP input member 'f\\u00F6' is unexpected"}}`);
  assert.is(errorReplyText({ errorClass: 'CommandNotFound', desc: 'x', idJson: '5' }), '{"id": 5, "error": {"class": "CommandNotFound", "desc": "x"}}');
  assert.is(returnReplyText('{}', '"a"'), '{"return": {}, "id": "a"}');
  assert.is(quoteLikeQemu('a/b\u00e9\u007f\u0000\u{1f600}\t"\\'), '"a/b\\u00E9\\u007F\\u0000\\uD83D\\uDE00\\t\\"\\\\"');
  assert.is(
    formatLikeQemu({ status: 'running', n: 18446744073709551615n, f: new LosslessNumber('1.50'), list: [1, null, true, {}], gone: undefined }),
    '{"status": "running", "n": 18446744073709551615, "f": 1.50, "list": [1, null, true, {}]}',
  );
  assert.throws(() => formatLikeQemu(Number.POSITIVE_INFINITY), TypeError);
});

test('property: inserting then removing an id gives back the reply, and the result is the same JSON plus the id', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.boolean(), fc.jsonValue(), (value, isError, id) => {
      const reply = isError ? `{"error": ${formatLikeQemu(value)}}` : `{"return": ${formatLikeQemu(value)}}`;
      const idText = JSON.stringify(id);
      const withId = withCallerId(reply, false, idText);
      assert.equal(JSON.parse(withId), { ...JSON.parse(reply), id: JSON.parse(idText) });
      assert.is(Object.keys(JSON.parse(withId))[isError ? 0 : 1], 'id');
      assert.is(withCallerId(withId, true, undefined), reply);
    }),
    { numRuns: 300 },
  );
});

test.run();
