/** Re-layout of JSON text: only whitespace may change, never a token. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertJson, compactJson, isJsonObjectText, JsonTextError, memberText, prettyJson } from '../../lib/cli/json-text.js';

const QEMU_REPLY = '{"return": {"status": "prelaunch", "singlestep": false, "running": false}}';

test('compact removes whitespace outside strings only', () => {
  assert.is(compactJson(QEMU_REPLY), '{"return":{"status":"prelaunch","singlestep":false,"running":false}}');
  assert.is(compactJson('{"a b": " x  y ", "c": [1, 2 ,3]}'), '{"a b":" x  y ","c":[1,2,3]}');
});

test('number tokens and escapes survive exactly', () => {
  const text = '{"return": {"ns": 18446744073709551615, "f": 1.50e+3, "s": "\\u00E9\\"\\\\ \\n"}}';
  assert.is(compactJson(text), '{"return":{"ns":18446744073709551615,"f":1.50e+3,"s":"\\u00E9\\"\\\\ \\n"}}');
  assert.ok(prettyJson(text).includes('"ns": 18446744073709551615'));
  assert.ok(prettyJson(text).includes('"f": 1.50e+3'));
});

test('pretty matches JSON.stringify(value, null, 2) for values JSON.parse keeps exactly', () => {
  const samples = [
    QEMU_REPLY,
    '{"return": {}}',
    '{"return": []}',
    '{"a": [1, {"b": [], "c": {}}, [[]], "x"], "d": null, "e": true}',
    '[]',
    '"text"',
    '42',
    '{"id": "libvirt-419", "error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}}',
  ];
  for (const sample of samples) assert.is(prettyJson(sample), JSON.stringify(JSON.parse(sample), null, 2), sample);
});

test('the virsh --pretty capture shape', () => {
  assert.is(
    prettyJson('{"return":{"status":"running","singlestep":false,"running":true}}'),
    '{\n  "return": {\n    "status": "running",\n    "singlestep": false,\n    "running": true\n  }\n}',
  );
});

test('memberText returns a member as written, first occurrence, top level only', () => {
  assert.is(memberText(QEMU_REPLY, 'return'), '{"status":"prelaunch","singlestep":false,"running":false}');
  assert.is(memberText('{"error": {"class": "X", "desc": "d"}}', 'return'), undefined);
  assert.is(memberText('{"a": {"return": 1}}', 'return'), undefined);
  assert.is(memberText('{"return": 18446744073709551615}', 'return'), '18446744073709551615');
  assert.is(memberText('{"return": "VM status: running\\r\\n"}', 'return'), '"VM status: running\\r\\n"');
  assert.is(memberText('{"x": [1, 2], "return": [[1], {"a": []}]}', 'return'), '[[1],{"a":[]}]');
  assert.is(memberText('[1]', 'return'), undefined);
});

test('invalid JSON is refused, object detection', () => {
  assert.throws(() => assertJson('{"execute":'), (error: Error) => error instanceof JsonTextError);
  assert.throws(() => compactJson('{} {}'), (error: Error) => error instanceof JsonTextError);
  assert.ok(isJsonObjectText(' {"execute": "x"} '));
  assert.not.ok(isJsonObjectText('[1,2]'));
  assert.not.ok(isJsonObjectText('null'));
  assert.not.ok(isJsonObjectText('{"execute":"query-name"} {"x":1}'));
});

test.run();
