/**
 * Read-only access, as on libvirtd's libvirt-sock-ro: a read-only endpoint
 * (and, on a read-write one, a connection opened with VIR_CONNECT_RO, as
 * `virsh --readonly` does) refuses monitor commands, agent commands,
 * suspend / resume / reset / shutdown / reboot / destroy and monitor-event
 * registration with libvirt's wording,
 * and still serves lookups.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { qemuProcedures, remoteProcedures } from '../../lib/rpc/catalog.js';
import { domainProcedures } from '../../lib/rpc/domain-catalog.js';
import { emptyBody, monitorCommandArgs, type Domain } from '../../lib/rpc/messages.js';
import { QemuProc, RemoteProc, RpcProgram } from '../../lib/rpc/protocol.js';
import { DOMAIN_ID, DOMAIN_NAME, DOMAIN_UUID, SYSTEM_PYTHON, run, startEndpoint, type Endpoint } from './endpoint-harness.js';
import { RpcTestClient } from './rpc-client.js';

const { REMOTE, QEMU } = RpcProgram;
const DENIED = 'operation forbidden: read only access prevents virDomainQemuMonitorCommand';
const dom: Domain = { name: DOMAIN_NAME, uuid: Buffer.from(DOMAIN_UUID.replace(/-/g, ''), 'hex'), id: DOMAIN_ID };
let readOnly: Endpoint;
let readWrite: Endpoint;

test.before(async () => {
  [readOnly, readWrite] = await Promise.all([startEndpoint({ readOnly: true }), startEndpoint()]);
});
test.after(async () => {
  await Promise.all([readOnly.close(), readWrite.close()]);
});

test('virsh on a read-only endpoint: qemu-monitor-command refused with libvirt\'s words, exit 1', async () => {
  const result = await run('virsh', ['-c', readOnly.uri, 'qemu-monitor-command', DOMAIN_NAME, '{"execute":"query-status"}']);
  assert.is(result.code, 1);
  assert.match(result.stderr, `error: ${DENIED}`);
});

test('virsh --readonly on a read-write endpoint is refused the same way', async () => {
  const result = await run('virsh', ['--readonly', '-c', readWrite.uri, 'qemu-monitor-command', DOMAIN_NAME, '--hmp', 'info', 'status']);
  assert.is(result.code, 1);
  assert.match(result.stderr, `error: ${DENIED}`);
});

test('read-only: error code 29 (VIR_ERR_OPERATION_DENIED); suspend, resume and agent refused; lookups served', async () => {
  const client = await RpcTestClient.connect(readOnly.socketPath);
  try {
    await client.call(REMOTE, RemoteProc.CONNECT_OPEN, remoteProcedures.connectOpen.args, { name: null, flags: 0 }, emptyBody);
    const denied = await client.callFails(QEMU, QemuProc.DOMAIN_MONITOR_COMMAND, monitorCommandArgs, { dom, cmd: '{"execute":"stop"}', flags: 0 });
    // libvirt-qemu.c raises its errors from VIR_FROM_NONE, libvirt-domain.c from VIR_FROM_DOMAIN (20).
    assert.equal([denied.code, denied.domain, denied.message], [29, 0, DENIED]);
    const suspend = await client.callFails(REMOTE, RemoteProc.DOMAIN_SUSPEND, remoteProcedures.domainSuspend.args, { dom });
    assert.equal([suspend.domain, suspend.message], [20, 'operation forbidden: read only access prevents virDomainSuspend']);
    const resume = await client.callFails(REMOTE, RemoteProc.DOMAIN_RESUME, remoteProcedures.domainResume.args, { dom });
    assert.is(resume.message, 'operation forbidden: read only access prevents virDomainResume');
    const agent = await client.callFails(QEMU, QemuProc.DOMAIN_AGENT_COMMAND, qemuProcedures.domainAgentCommand.args, { dom, cmd: '{"execute":"guest-ping"}', timeout: -1, flags: 0 });
    assert.equal([agent.domain, agent.message], [0, 'operation forbidden: read only access prevents virDomainQemuAgentCommand']);
    for (const [proc, spec, args, api] of [
      [RemoteProc.DOMAIN_RESET, domainProcedures.domainReset, { dom, flags: 0 }, 'virDomainReset'],
      [RemoteProc.DOMAIN_SHUTDOWN, domainProcedures.domainShutdown, { dom }, 'virDomainShutdown'],
      [RemoteProc.DOMAIN_REBOOT, domainProcedures.domainReboot, { dom, flags: 0 }, 'virDomainReboot'],
      [RemoteProc.DOMAIN_DESTROY, domainProcedures.domainDestroy, { dom }, 'virDomainDestroy'],
    ] as const) {
      const refused = await client.callFails(REMOTE, proc, spec.args as typeof domainProcedures.domainReset.args, args as never);
      assert.equal([refused.code, refused.domain, refused.message], [29, 20, `operation forbidden: read only access prevents ${api}`]);
    }
    const state = await client.call(REMOTE, RemoteProc.DOMAIN_GET_STATE, domainProcedures.domainGetState.args, { dom, flags: 0 }, domainProcedures.domainGetState.reply);
    assert.equal(state, { state: 3, reason: 1 }, 'reads are served: paused (user) in prelaunch');
    const found = await client.call(REMOTE, RemoteProc.DOMAIN_LOOKUP_BY_NAME, remoteProcedures.domainLookupByName.args, { name: DOMAIN_NAME }, remoteProcedures.domainLookupByName.reply);
    assert.equal(found, { dom });
    const status = await readOnly.other.execute<{ status: string }>('query-status');
    assert.is(status.status, 'prelaunch', 'nothing the read-only client sent reached QEMU');
  } finally {
    client.close();
  }
});

test('read-only: monitor-event registration and deregistration refused as libvirt refuses them (code 29, domain 0), before flags or domain are looked at', async () => {
  for (const endpoint of [readOnly, readWrite]) {
    const client = await RpcTestClient.connect(endpoint.socketPath);
    try {
      const connectReadOnly = 1; // VIR_CONNECT_RO, what virConnectOpenReadOnly sends
      await client.call(REMOTE, RemoteProc.CONNECT_OPEN, remoteProcedures.connectOpen.args, { name: null, flags: endpoint === readOnly ? 0 : connectReadOnly }, emptyBody);
      const register = qemuProcedures.connectDomainMonitorEventRegister.args;
      for (const args of [
        { dom: null, event: null, flags: 0 },
        { dom, event: 'STOP', flags: 1 },
        { dom: { ...dom, name: 'no-such-domain' }, event: null, flags: 0x80 },
      ]) {
        const refused = await client.callFails(QEMU, QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_REGISTER, register, args);
        assert.equal(
          [refused.code, refused.domain, refused.level, refused.message],
          [29, 0, 2, 'operation forbidden: read only access prevents virConnectDomainQemuMonitorEventRegister'],
        );
      }
      const deregister = await client.callFails(QEMU, QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER, qemuProcedures.connectDomainMonitorEventDeregister.args, { callbackID: 1 });
      assert.equal([deregister.code, deregister.domain, deregister.message], [29, 0, 'operation forbidden: read only access prevents virConnectDomainQemuMonitorEventDeregister']);
    } finally {
      client.close();
    }
  }
});

test('libvirt-python on a read-only endpoint: qemuMonitorEventRegister raises libvirt\'s error', async () => {
  const script = [
    'import sys, libvirt, libvirt_qemu',
    'libvirt.registerErrorHandler(lambda *a: None, None)',
    'libvirt.virEventRegisterDefaultImpl()',
    'conn = libvirt.open(sys.argv[1])',
    'try:',
    '    libvirt_qemu.qemuMonitorEventRegister(conn, None, None, lambda *a: None, None, 0)',
    '    print("registered")',
    'except libvirt.libvirtError as e:',
    '    print(e.get_error_code(), e.get_error_message())',
  ].join('\n');
  const result = await run(SYSTEM_PYTHON, ['-c', script, readOnly.uri]);
  assert.is(result.stdout.trim(), '29 operation forbidden: read only access prevents virConnectDomainQemuMonitorEventRegister', result.stderr);
});

test('read-write: DOMAIN_SUSPEND and DOMAIN_RESUME run stop and cont', async () => {
  const client = await RpcTestClient.connect(readWrite.socketPath);
  try {
    await client.call(REMOTE, RemoteProc.CONNECT_OPEN, remoteProcedures.connectOpen.args, { name: null, flags: 0 }, emptyBody);
    await client.call(REMOTE, RemoteProc.DOMAIN_RESUME, remoteProcedures.domainResume.args, { dom }, emptyBody);
    assert.is((await readWrite.other.execute<{ status: string }>('query-status')).status, 'running');
    await client.call(REMOTE, RemoteProc.DOMAIN_SUSPEND, remoteProcedures.domainSuspend.args, { dom }, emptyBody);
    assert.is((await readWrite.other.execute<{ status: string }>('query-status')).status, 'paused');
  } finally {
    client.close();
  }
});

test.run();
