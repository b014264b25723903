import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { XdrError } from '../../lib/rpc/errors.js';
import {
  agentCommandArgs,
  agentCommandReply,
  authListReply,
  callbackIdBody,
  connectOpenArgs,
  domainBody,
  emptyBody,
  getTypeReply,
  getUriReply,
  getVersionReply,
  isActiveReply,
  lookupByIdArgs,
  lookupByNameArgs,
  lookupByUuidArgs,
  monitorCommandArgs,
  monitorCommandReply,
  monitorEventMessage,
  monitorEventRegisterArgs,
  optionalDomain,
  remoteError,
  supportsFeatureArgs,
  supportsFeatureReply,
  type Domain,
} from '../../lib/rpc/messages.js';
import { decodeXdr, encodeXdr, type XdrCodec } from '../../lib/rpc/xdr.js';

const lab1: Domain = { name: 'lab1', uuid: Buffer.from('3a1676389b404ecb9fad87007c96f632', 'hex'), id: 1 };
const LAB1_HEX = '000000046c616231' + '3a1676389b404ecb9fad87007c96f632' + '00000001';

/** Encodes to exactly `expectedHex` (when given) and decodes back to `value`. */
function roundTrip<T>(codec: XdrCodec<T>, value: T, expectedHex?: string): void {
  const bytes = encodeXdr(codec, value);
  if (expectedHex !== undefined) assert.is(bytes.toString('hex'), expectedHex);
  assert.equal(decodeXdr(codec, bytes), value);
}

test('bodies seen in the captures encode to the captured bytes', () => {
  roundTrip(authListReply, { types: [0] }, '0000000100000000');
  roundTrip(supportsFeatureArgs, { feature: 10 }, '0000000a');
  roundTrip(supportsFeatureReply, { supported: 1 }, '00000001');
  roundTrip(connectOpenArgs, { name: 'qemu:///system', flags: 0 }, '000000010000000e71656d753a2f2f2f73797374656d000000000000');
  roundTrip(lookupByNameArgs, { name: 'lab1' }, '000000046c616231');
  roundTrip(lookupByIdArgs, { id: 1 }, '00000001');
  roundTrip(lookupByUuidArgs, { uuid: lab1.uuid }, '3a1676389b404ecb9fad87007c96f632');
  roundTrip(domainBody, { dom: lab1 }, LAB1_HEX);
  roundTrip(isActiveReply, { active: 1 }, '00000001');
  roundTrip(getTypeReply, { type: 'QEMU' }, '0000000451454d55');
  roundTrip(getVersionReply, { hvVer: 7002022n }, '00000000006ad7a6');
  roundTrip(
    agentCommandArgs,
    { dom: lab1, cmd: '{"execute":"guest-ping"}', timeout: -1, flags: 0 },
    LAB1_HEX + '00000018' + Buffer.from('{"execute":"guest-ping"}').toString('hex') + 'ffffffff' + '00000000',
  );
  roundTrip(monitorEventRegisterArgs, { dom: null, event: 'X', flags: 4 }, '00000000' + '00000001' + '0000000158000000' + '00000004');
  roundTrip(monitorEventRegisterArgs, { dom: lab1, event: null, flags: 0 }, '00000001' + LAB1_HEX + '00000000' + '00000000');
  roundTrip(callbackIdBody, { callbackID: 14 }, '0000000e');
  roundTrip(
    monitorEventMessage,
    { callbackID: 14, dom: lab1, event: 'STOP', seconds: 1795635009n, micros: 289364, details: null },
    '0000000e' + LAB1_HEX + '0000000453544f50' + '000000006b073741' + '00046a54' + '00000000',
  );
});

test('bodies no capture holds round-trip: null names, details, agent results, a URI', () => {
  roundTrip(connectOpenArgs, { name: null, flags: 1 }, '0000000000000001');
  roundTrip(monitorEventMessage, {
    callbackID: 3,
    dom: { ...lab1, id: -1 },
    event: 'RESET',
    seconds: 1n,
    micros: 999_999,
    details: '{"guest":false,"reason":"host-qmp-system-reset"}',
  });
  roundTrip(monitorCommandArgs, { dom: lab1, cmd: 'info status', flags: 1 });
  roundTrip(monitorCommandReply, { result: 'VM status: running\r\n' });
  roundTrip(agentCommandReply, { result: null }, '00000000');
  roundTrip(agentCommandReply, { result: '{"return":{}}' });
  roundTrip(getUriReply, { uri: 'qemu:///system' });
  roundTrip(authListReply, { types: [] }, '00000000');
  roundTrip(optionalDomain, null, '00000000');
  roundTrip(emptyBody, undefined, '');
});

test('remote_error keeps every field, optional domain and network included', () => {
  // mitm-py2: the one captured error whose str1/str2 are not template and detail.
  roundTrip(
    remoteError,
    {
      code: 8,
      domain: 0,
      message: 'unsupported flags (0x4) in function virDomainQemuMonitorEventStateRegisterID',
      level: 2,
      dom: null,
      str1: 'virDomainQemuMonitorEventStateRegisterID',
      str2: 'flags',
      str3: null,
      int1: 0,
      int2: 0,
      net: null,
    },
    '00000008' +
      '00000000' +
      '00000001' +
      '0000004c' +
      Buffer.from('unsupported flags (0x4) in function virDomainQemuMonitorEventStateRegisterID').toString('hex') +
      '00000002' +
      '00000000' +
      '00000001' +
      '00000028' +
      Buffer.from('virDomainQemuMonitorEventStateRegisterID').toString('hex') +
      '00000001' +
      '00000005' +
      Buffer.from('flags').toString('hex') +
      '000000' +
      '00000000' +
      '00000000' +
      '00000000' +
      '00000000',
  );
  roundTrip(remoteError, {
    code: 1,
    domain: 10,
    message: null,
    level: 1,
    dom: lab1,
    str1: 'a',
    str2: null,
    str3: 'c',
    int1: -7,
    int2: 7,
    net: { name: 'default', uuid: Buffer.alloc(16, 0xab) },
  });
});

test('bad bodies throw XdrError: short uuid, too many auth types, bad optional, truncation', () => {
  assert.throws(() => encodeXdr(domainBody, { dom: { ...lab1, uuid: Buffer.alloc(15) } }), (error: unknown) => error instanceof XdrError);
  assert.throws(() => encodeXdr(authListReply, { types: new Array<number>(21).fill(0) }), (error: unknown) => error instanceof XdrError);
  assert.throws(() => decodeXdr(authListReply, Buffer.from('00000015' + '00'.repeat(84), 'hex')), (error: unknown) => error instanceof XdrError);
  assert.throws(() => decodeXdr(optionalDomain, Buffer.from('00000002', 'hex')), (error: unknown) => error instanceof XdrError);
  assert.throws(() => decodeXdr(domainBody, Buffer.from(LAB1_HEX.slice(0, -2), 'hex')), (error: unknown) => error instanceof XdrError);
  assert.throws(() => encodeXdr(getVersionReply, { hvVer: -1n }), (error: unknown) => error instanceof XdrError);
});

test.run();
