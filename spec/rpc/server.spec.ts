/**
 * The endpoint at the wire level, with a bare RPC client (rpc-client.ts) in
 * front of a real QEMU: what libvirt answers before CONNECT_OPEN, features,
 * the REMOTE informational calls, lookups that fail, proc 7 with and
 * without fds, events as MESSAGEs with serial 1, deregistration, the guest
 * agent, CONNECT_CLOSE closing the socket, keepalive both ways, a silent
 * client disconnected, a slow consumer disconnected, and the socket's mode.
 */
import { statSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { qemuProcedures, remoteProcedures } from '../../lib/rpc/catalog.js';
import { encodeMessage } from '../../lib/rpc/framing.js';
import { emptyBody, monitorCommandArgs, monitorEventMessage, remoteError, type Domain } from '../../lib/rpc/messages.js';
import { Feature, KeepaliveProc, MessageStatus, MessageType, QemuProc, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';
import { decodeXdr, encodeXdr } from '../../lib/rpc/xdr.js';
import { startQga, type QgaInstance } from '../helpers/qemu.js';
import { DOMAIN_ID, DOMAIN_NAME, DOMAIN_UUID, startEndpoint, type Endpoint } from './endpoint-harness.js';
import { RpcTestClient } from './rpc-client.js';

const { REMOTE, QEMU, KEEPALIVE } = RpcProgram;
let endpoint: Endpoint;
let qga: QgaInstance;
const dom: Domain = { name: DOMAIN_NAME, uuid: Buffer.from(DOMAIN_UUID.replace(/-/g, ''), 'hex'), id: DOMAIN_ID };

test.before(async () => {
  qga = await startQga();
  endpoint = await startEndpoint({ agentPath: qga.qgaPath, keepalive: { intervalMs: 100, maxMissed: 2 }, maxOutboundBytes: 64 * 1024 });
});
test.after(async () => {
  await endpoint.close();
  await qga.stop();
});

/** A client that has done what virsh does before its first real call. */
async function openClient(): Promise<RpcTestClient> {
  const client = await RpcTestClient.connect(endpoint.socketPath);
  await client.call(REMOTE, RemoteProc.CONNECT_OPEN, remoteProcedures.connectOpen.args, { name: 'qemu:///system', flags: 0 }, emptyBody);
  return client;
}

test('the socket is created mode 0600', () => {
  assert.is(statSync(endpoint.socketPath).mode & 0o777, 0o600);
});

test('before CONNECT_OPEN: AUTH_LIST and keepalive answer, everything else is "hypervisor connection not open"', async () => {
  const client = await RpcTestClient.connect(endpoint.socketPath);
  try {
    assert.equal(await client.call(REMOTE, RemoteProc.AUTH_LIST, emptyBody, undefined, remoteProcedures.authList.reply), { types: [0] });
    const keepalive = await client.call(REMOTE, RemoteProc.CONNECT_SUPPORTS_FEATURE, remoteProcedures.connectSupportsFeature.args, { feature: Feature.PROGRAM_KEEPALIVE }, remoteProcedures.connectSupportsFeature.reply);
    assert.is(keepalive.supported, 1);
    const error = await client.callFails(REMOTE, RemoteProc.DOMAIN_LOOKUP_BY_NAME, remoteProcedures.domainLookupByName.args, { name: DOMAIN_NAME });
    assert.equal([error.code, error.domain, error.message], [1, 7, 'internal error: hypervisor connection not open']);
    const qemuError = await client.callFails(QEMU, QemuProc.DOMAIN_MONITOR_COMMAND, monitorCommandArgs, { dom, cmd: '{"execute":"query-status"}', flags: 0 });
    assert.is(qemuError.message, 'internal error: hypervisor connection not open');
  } finally {
    client.close();
  }
});

test('features after open: event and close callbacks and fd passing yes; 360/361 accepted', async () => {
  const client = await openClient();
  try {
    const ask = async (feature: number): Promise<number> =>
      (await client.call(REMOTE, RemoteProc.CONNECT_SUPPORTS_FEATURE, remoteProcedures.connectSupportsFeature.args, { feature }, remoteProcedures.connectSupportsFeature.reply)).supported;
    assert.equal(
      [await ask(Feature.REMOTE_EVENT_CALLBACK), await ask(Feature.REMOTE_CLOSE_CALLBACK), await ask(Feature.FD_PASSING), await ask(9999)],
      [1, 1, 1, 0],
    );
    await client.call(REMOTE, RemoteProc.CONNECT_REGISTER_CLOSE_CALLBACK, emptyBody, undefined, emptyBody);
    await client.call(REMOTE, RemoteProc.CONNECT_UNREGISTER_CLOSE_CALLBACK, emptyBody, undefined, emptyBody);
  } finally {
    client.close();
  }
});

test('GET_TYPE, GET_VERSION (from the QMP greeting), GET_URI, IS_ACTIVE', async () => {
  const client = await openClient();
  try {
    assert.equal(await client.call(REMOTE, RemoteProc.CONNECT_GET_TYPE, emptyBody, undefined, remoteProcedures.connectGetType.reply), { type: 'QEMU' });
    const { major, minor, micro } = endpoint.monitor.greeting!.QMP.version.qemu;
    const version = await client.call(REMOTE, RemoteProc.CONNECT_GET_VERSION, emptyBody, undefined, remoteProcedures.connectGetVersion.reply);
    assert.is(version.hvVer, BigInt(major * 1_000_000 + minor * 1000 + micro));
    assert.equal(await client.call(REMOTE, RemoteProc.CONNECT_GET_URI, emptyBody, undefined, remoteProcedures.connectGetUri.reply), { uri: 'qemu:///system' });
    assert.equal(await client.call(REMOTE, RemoteProc.DOMAIN_IS_ACTIVE, remoteProcedures.domainIsActive.args, { dom }, remoteProcedures.domainIsActive.reply), { active: 1 });
  } finally {
    client.close();
  }
});

test('failed lookups are NO_DOMAIN (42) from the QEMU driver, worded as libvirt', async () => {
  const client = await openClient();
  try {
    const byId = await client.callFails(REMOTE, RemoteProc.DOMAIN_LOOKUP_BY_ID, remoteProcedures.domainLookupById.args, { id: 7 });
    assert.equal([byId.code, byId.domain, byId.message], [42, 10, 'Domain not found: no domain with matching id 7']);
    const uuid = Buffer.alloc(16, 0xab);
    const byUuid = await client.callFails(REMOTE, RemoteProc.DOMAIN_LOOKUP_BY_UUID, remoteProcedures.domainLookupByUuid.args, { uuid });
    assert.is(byUuid.message, "Domain not found: no domain with matching uuid 'abababab-abab-abab-abab-abababababab'");
    const stale = await client.callFails(QEMU, QemuProc.DOMAIN_MONITOR_COMMAND, monitorCommandArgs, { dom: { ...dom, uuid }, cmd: '{}', flags: 0 });
    assert.is(stale.message, `Domain not found: no domain with matching uuid 'abababab-abab-abab-abab-abababababab' (${DOMAIN_NAME})`);
  } finally {
    client.close();
  }
});

test('unknown procedure and unknown program keep the connection', async () => {
  const client = await openClient();
  try {
    const unknown = await client.callFails(REMOTE, 9999, emptyBody, undefined);
    assert.equal([unknown.code, unknown.domain, unknown.message], [39, 7, 'unknown procedure: 9999']);
    const program = await client.callFails(0x12345678, 1, emptyBody, undefined);
    assert.is(program.message, `Cannot find program ${0x12345678} version 1`);
    // LOOKUP_BY_NAME whose string runs past the end of the message.
    const truncated = encodeMessage({ prog: REMOTE, vers: 1, proc: RemoteProc.DOMAIN_LOOKUP_BY_NAME, type: MessageType.CALL, serial: 77, status: 0 }, Buffer.from([0, 0, 0, 9, 0x6c]));
    client.writeRaw(truncated);
    const undecodable = await client.waitFor((m) => m.header.serial === 77, 'reply to the truncated call');
    assert.is(decodeXdr(remoteError, undecodable.body).message, 'Unable to decode message payload');
    assert.equal(await client.call(REMOTE, RemoteProc.CONNECT_GET_TYPE, emptyBody, undefined, remoteProcedures.connectGetType.reply), { type: 'QEMU' });
  } finally {
    client.close();
  }
});

test('a length word over the 32 MiB limit closes the connection, with a log line', async () => {
  const client = await openClient();
  const header = Buffer.alloc(28);
  header.writeUInt32BE(32 * 1024 * 1024 + 5, 0);
  header.writeUInt32BE(REMOTE, 4);
  client.writeRaw(header);
  await client.waitForEnd();
  assert.ok(endpoint.log.count('libvirt client sent unframeable data; disconnecting it') >= 1);
});

test('proc 7 without fds is proc 1; with fds it is refused (Node cannot receive them)', async () => {
  const client = await openClient();
  try {
    const plain = await client.call(QEMU, QemuProc.DOMAIN_MONITOR_COMMAND_WITH_FILES, monitorCommandArgs, { dom, cmd: '{"execute":"query-name"}', flags: 0 }, qemuProcedures.domainMonitorCommand.reply);
    assert.match(plain.result, /^\{"return":\{\},"id":"libvirt-\d+"\}$/);
    const header = { prog: QEMU, vers: 1, proc: QemuProc.DOMAIN_MONITOR_COMMAND_WITH_FILES, type: MessageType.CALL_WITH_FDS, serial: 900, status: MessageStatus.OK };
    // One fd announced: libvirt would send it with one placeholder byte; only the byte arrives here.
    client.writeRaw(Buffer.concat([encodeMessage(header, encodeXdr(monitorCommandArgs, { dom, cmd: '{"execute":"query-name"}', flags: 0 }), 1), Buffer.from([0])]));
    const reply = await client.waitFor((m) => m.header.serial === 900, 'reply to the fd call');
    assert.is(reply.header.status, MessageStatus.ERROR);
    assert.equal(await client.call(REMOTE, RemoteProc.CONNECT_GET_TYPE, emptyBody, undefined, remoteProcedures.connectGetType.reply), { type: 'QEMU' });
  } finally {
    client.close();
  }
});

test('events arrive as DOMAIN_MONITOR_EVENT MESSAGEs with serial 1; unknown callback ids are refused', async () => {
  const client = await openClient();
  try {
    const registerArgs = qemuProcedures.connectDomainMonitorEventRegister.args;
    const { callbackID } = await client.call(QEMU, QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_REGISTER, registerArgs, { dom, event: 'stop', flags: 2 }, qemuProcedures.connectDomainMonitorEventRegister.reply);
    await endpoint.other.execute('cont');
    await endpoint.other.execute('stop');
    const message = await client.waitFor((m) => m.header.prog === QEMU && m.header.proc === QemuProc.DOMAIN_MONITOR_EVENT, 'an event');
    assert.equal(message.header, { prog: QEMU, vers: 1, proc: 6, type: MessageType.MESSAGE, serial: 1, status: MessageStatus.OK });
    const event = decodeXdr(monitorEventMessage, message.body);
    assert.equal({ ...event, seconds: 0n, micros: 0 }, { callbackID, dom, event: 'STOP', seconds: 0n, micros: 0, details: null });
    const deregisterArgs = qemuProcedures.connectDomainMonitorEventDeregister.args;
    await client.call(QEMU, QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER, deregisterArgs, { callbackID }, emptyBody);
    const again = await client.callFails(QEMU, QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER, deregisterArgs, { callbackID });
    assert.equal([again.code, again.domain, again.message], [39, 7, `qemu monitor event callback ${callbackID} not registered`]);
  } finally {
    client.close();
  }
});

test('proc 3 reaches the configured guest agent', async () => {
  const client = await openClient();
  try {
    const args = qemuProcedures.domainAgentCommand.args;
    const reply = await client.call(QEMU, QemuProc.DOMAIN_AGENT_COMMAND, args, { dom, cmd: '{"execute":"guest-ping"}', timeout: -1, flags: 0 }, qemuProcedures.domainAgentCommand.reply);
    assert.equal(reply, { result: '{"return":{}}' });
  } finally {
    client.close();
  }
});

test('CONNECT_CLOSE is answered, then the server closes the socket', async () => {
  const client = await openClient();
  await client.call(REMOTE, RemoteProc.CONNECT_CLOSE, emptyBody, undefined, emptyBody);
  await client.waitForEnd();
});

test('keepalive: a PING is answered with a PONG; after feature 10 the server pings', async () => {
  const client = await RpcTestClient.connect(endpoint.socketPath);
  try {
    client.writeRaw(encodeMessage({ prog: KEEPALIVE, vers: 1, proc: KeepaliveProc.PING, type: MessageType.MESSAGE, serial: 0, status: 0 }));
    const pong = await client.waitFor((m) => m.header.prog === KEEPALIVE && m.header.proc === KeepaliveProc.PONG, 'PONG');
    assert.equal(pong.header, { prog: KEEPALIVE, vers: 1, proc: 2, type: MessageType.MESSAGE, serial: 0, status: 0 });
    assert.is(pong.body.length, 0);
    await client.call(REMOTE, RemoteProc.CONNECT_SUPPORTS_FEATURE, remoteProcedures.connectSupportsFeature.args, { feature: Feature.PROGRAM_KEEPALIVE }, remoteProcedures.connectSupportsFeature.reply);
    await client.waitFor((m) => m.header.prog === KEEPALIVE && m.header.proc === KeepaliveProc.PING, 'PING from the server');
    // Never answering: after maxMissed PINGs the server gives up on the client, with a log line.
    await client.waitForEnd();
    assert.ok(endpoint.log.count('libvirt client did not answer keepalive; disconnecting') >= 1);
  } finally {
    client.close();
  }
});

test('a client that does not read is disconnected once its outbound buffer passes the limit', async () => {
  const client = await openClient();
  client.socket.pause();
  const cmd = '{"execute":"query-qmp-schema"}';
  for (let index = 0; index < 40; index++) client.send(QEMU, QemuProc.DOMAIN_MONITOR_COMMAND, monitorCommandArgs, { dom, cmd, flags: 0 });
  await endpoint.log.waitFor('libvirt client is not reading its replies and events; disconnecting it');
  client.socket.resume();
  await client.waitForEnd();
});

test.run();
