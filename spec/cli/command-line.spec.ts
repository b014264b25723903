/** Words to a QMP command: virsh's wrapping rules and qmp-shell's key=value form. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildQmpCommand, CommandLineError, keyValueArguments, splitLine } from '../../lib/cli/command-line.js';

test('virsh: a JSON object (joined with spaces) is sent as is', () => {
  assert.is(buildQmpCommand(['{"execute":"query-status"}']), '{"execute":"query-status"}');
  assert.is(buildQmpCommand(['{"execute":', '"query-status"}']), '{"execute": "query-status"}');
  assert.is(buildQmpCommand(['{"execute":"query-status","id":"myid-42"}']), '{"execute":"query-status","id":"myid-42"}');
});

test('virsh: a bare name is wrapped; anything that is not a JSON object becomes the name, whole', () => {
  assert.is(buildQmpCommand(['query-status']), '{"execute":"query-status"}');
  assert.is(buildQmpCommand(['not json at all']), '{"execute":"not json at all"}');
  assert.is(buildQmpCommand(['{"execute":"query-status"']), '{"execute":"{\\"execute\\":\\"query-status\\""}');
  assert.is(buildQmpCommand(['[1,2]']), '{"execute":"[1,2]"}');
});

test('virsh: NAME JSON-ARGS, where the first word is the name even if it is JSON', () => {
  assert.is(buildQmpCommand(['qom-get', '{"path":"/machine",', '"property":"type"}']), '{"execute":"qom-get","arguments":{"path":"/machine", "property":"type"}}');
  assert.is(buildQmpCommand(['{"execute":"query-name"}', '{"x":1}']), '{"execute":"{\\"execute\\":\\"query-name\\"}","arguments":{"x":1}}');
});

test('virsh: NAME "a":1 "b":2 are joined with commas inside braces', () => {
  assert.is(buildQmpCommand(['qom-get', '"path":"/machine"', '"property":"type"']), '{"execute":"qom-get","arguments":{"path":"/machine","property":"type"}}');
});

test('qmp-shell: key=value, values JSON when they parse, strings otherwise, number tokens kept', () => {
  assert.is(
    buildQmpCommand(['device_add', 'driver=usb-kbd', 'id=kbd0']),
    '{"execute":"device_add","arguments":{"driver":"usb-kbd","id":"kbd0"}}',
  );
  assert.is(
    keyValueArguments(['a=1', 'b=true', 'c=null', 'd="quoted str"', 'e=18446744073709551615', 'f=1.50', 'g=[1, 2]', 'h={"x":1}', 'i=', 'j=a=b', 'k=1G']),
    '{"a":1,"b":true,"c":null,"d":"quoted str","e":18446744073709551615,"f":1.50,"g":[1, 2],"h":{"x":1},"i":"","j":"a=b","k":"1G"}',
  );
});

test('qmp-shell: dotted keys nest; conflicts are refused', () => {
  assert.is(keyValueArguments(['node-name=d0', 'file.driver=file', 'file.filename=/tmp/x.img']), '{"node-name":"d0","file":{"driver":"file","filename":"/tmp/x.img"}}');
  assert.throws(() => keyValueArguments(['a=1', 'a=2']), /cannot set "a" twice/);
  assert.throws(() => keyValueArguments(['a=1', 'a.b=2']), /cannot use "a" as both a value and an object/);
  assert.throws(() => keyValueArguments(['a.b=2', 'a=1']), /cannot use "a" as both a value and an object/);
  assert.throws(() => keyValueArguments(['a..b=1']), /empty name/);
});

test('words that are neither JSON nor key=value are refused with the culprit named', () => {
  assert.throws(() => buildQmpCommand(['device_add', 'driver=usb-kbd', 'oops']), (error: Error) => error instanceof CommandLineError && /got "oops"/.test(error.message));
  assert.throws(() => buildQmpCommand([]), /no command given/);
});

test('splitLine keeps quoted parts (and their quotes) together', () => {
  assert.equal(splitLine('  human-monitor-command command-line="info status"  '), ['human-monitor-command', 'command-line="info status"']);
  assert.equal(splitLine(`a b='x y' "c d"e`), ['a', `b='x y'`, '"c d"e']);
  assert.equal(splitLine('say "unbalanced'), ['say', '"unbalanced']);
  assert.equal(splitLine(''), []);
  assert.is(buildQmpCommand(splitLine('human-monitor-command command-line="info status"')), '{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}');
});

test.run();
