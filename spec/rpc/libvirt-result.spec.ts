/**
 * libvirt's result shape for QEMU proc 1, checked against the edge inputs of
 * libvirt 9.0 (virsh and libvirt-python, recorded for the edge inputs): the
 * `libvirt-N` id only when the command has `execute`, after `return`,
 * before `error`, compact.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { carriesLibvirtId, libvirtResult } from '../../lib/rpc/libvirt-result.js';

test('QEMU-formatted replies become compact, with the id where libvirt has it', () => {
  assert.is(
    libvirtResult('{"return": {"status": "running", "singlestep": false, "running": true}}', '{"execute":"query-status"}', 452),
    '{"return":{"status":"running","singlestep":false,"running":true},"id":"libvirt-452"}',
  );
  assert.is(
    libvirtResult('{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}', '{"execute":"nope"}', 454),
    '{"id":"libvirt-454","error":{"class":"CommandNotFound","desc":"The command nope has not been found"}}',
  );
});

test('no execute member, no id: [1,2], 42, {} and exec-oob come back id-less (direct-edge.txt)', () => {
  const objectError = '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}';
  assert.is(libvirtResult(objectError, '[1,2]', 1), '{"error":{"class":"GenericError","desc":"QMP input must be a JSON object"}}');
  assert.is(libvirtResult(objectError, '42', 1), '{"error":{"class":"GenericError","desc":"QMP input must be a JSON object"}}');
  assert.is(
    libvirtResult('{"error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}', '{}', 1),
    '{"error":{"class":"GenericError","desc":"QMP input lacks member \'execute\'"}}',
  );
  assert.not.ok(carriesLibvirtId('{"exec-oob":"query-status"}'));
});

test('refused input with execute keeps the id (arguments null, control)', () => {
  assert.is(
    libvirtResult('{"error": {"class": "GenericError", "desc": "QMP input member \'control\' is unexpected"}}', '{"execute":"query-status","control":{"run-oob":true}}', 494),
    '{"id":"libvirt-494","error":{"class":"GenericError","desc":"QMP input member \'control\' is unexpected"}}',
  );
});

test('integers beyond 2^53 survive the re-serialisation', () => {
  assert.is(libvirtResult('{"return": {"n": 18446744073709551615}}', '{"execute":"x"}', 3), '{"return":{"n":18446744073709551615},"id":"libvirt-3"}');
});

test('text that is not a JSON object is returned unchanged', () => {
  assert.is(libvirtResult('VM status: running\r\n', '{"execute":"x"}', 1), 'VM status: running\r\n');
});

test.run();
