/**
 * The REMOTE program table (remote_protocol.x) as far as virsh, libvirt-python
 * and virt-qemu-qmp-proxy need it for the QEMU pass-through (docs/monitor-facts.md §6).
 *
 * Features answered: PROGRAM_KEEPALIVE 1 (and the server starts pinging, as
 * libvirtd's remoteDispatchConnectSupportsFeature does), REMOTE_EVENT_CALLBACK
 * 1, REMOTE_CLOSE_CALLBACK 1 (360/361 are accepted; the only way this
 * endpoint's connection closes is the socket closing, which the client
 * notices itself), FD_PASSING 1 on a connection that receives fds (the
 * endpoint reads it with recvmsg; not on a read-only endpoint), else 0,
 * every other feature 0.
 */
import type { Monitor } from '../contract.js';
import { remoteProcedures } from './catalog.js';
import { ProgramTable, procedure, type CallContext } from './dispatch.js';
import { defineDomainEventCallbacks } from './domain-events.js';
import { defineDomainProcedures } from './domain-program.js';
import { wireDomain, type LibvirtDomain } from './domains.js';
import { DomainState } from './lifecycle.js';
import { remoteApiName } from './procedure-names.js';
import { openDomain, type ProgramContext } from './program-context.js';
import { RpcError } from './rpc-error.js';
import { AuthType, ErrorCode, ErrorDomain, Feature, RemoteProc, RpcProgram } from './protocol.js';

/** CONNECT_OPEN flag VIR_CONNECT_RO. */
const CONNECT_READ_ONLY = 1;
/** What CONNECT_GET_URI returns: the URI virsh and python asked for when they opened. */
const DEFAULT_URI = 'qemu:///system';

/** QEMU's version as libvirt encodes it: major * 1e6 + minor * 1e3 + micro. */
function hypervisorVersion(monitor: Monitor): bigint {
  const qemu = monitor.greeting?.QMP.version.qemu;
  if (!qemu) return 0n;
  return BigInt(qemu.major) * 1_000_000n + BigInt(qemu.minor) * 1_000n + BigInt(qemu.micro);
}

/**
 * Suspend or resume through the monitor, as libvirt's qemuDomainSuspend /
 * qemuDomainResume: nothing is sent to a domain already paused (suspend)
 * or not paused (resume), a pmsuspended one is refused, and the next STOP /
 * RESUME carries the call's reason. QEMU's refusal is OPERATION_FAILED.
 */
async function runStateCommand(context: ProgramContext, domain: LibvirtDomain, command: 'stop' | 'cont', signal: AbortSignal): Promise<void> {
  const { state } = await context.lifecycle.stateOf(domain);
  if (state === DomainState.PMSUSPENDED) throw RpcError.report(ErrorCode.OPERATION_INVALID, ErrorDomain.QEMU, 'domain is pmsuspended');
  if (command === 'stop' ? state === DomainState.PAUSED : state !== DomainState.PAUSED && state !== DomainState.CRASHED) return;
  context.lifecycle.expect(domain, command === 'stop' ? 'pause' : 'resume');
  try {
    await domain.monitor.execute(command, undefined, { signal, origin: { kind: 'passthrough' } });
  } catch (error) {
    context.lifecycle.forget(domain);
    throw RpcError.report(ErrorCode.OPERATION_FAILED, ErrorDomain.QEMU, (error as Error).message, { cause: error });
  }
}

/**
 * What libvirtd answers for a REMOTE call whose driver function the QEMU
 * driver lacks: the API entry point's virReportUnsupportedError, raised in
 * the file of the API (libvirt-network.c, libvirt-storage.c, ...).
 */
export function unsupportedCallError(proc: number): RpcError {
  const api = remoteApiName(proc);
  if (api === undefined) return RpcError.report(ErrorCode.RPC, ErrorDomain.RPC, `unknown procedure: ${proc}`);
  return RpcError.report(ErrorCode.NO_SUPPORT, errorDomainOfApi(api), api);
}

/** The VIR_FROM_* of the libvirt file that holds `api`. */
function errorDomainOfApi(api: string): number {
  const byObject: Array<[RegExp, number]> = [
    [/^vir(Connect\w*)?Network|^virConnectListAllNetworks/, ErrorDomain.NETWORK],
    [/^vir(Connect\w*)?Storage|^virStorage/, ErrorDomain.STORAGE],
    [/^virNodeDevice|^virConnect\w*NodeDevice|^virNodeListDevices|^virNodeNumOfDevices/, ErrorDomain.NODEDEV],
    [/^vir(Connect\w*)?Interface/, ErrorDomain.INTERFACE],
    [/^vir(Connect\w*)?Secret/, ErrorDomain.SECRET],
    [/^vir(Connect\w*)?NWFilter/, ErrorDomain.NWFILTER],
    [/^virDomainSnapshot/, ErrorDomain.DOMAIN_SNAPSHOT],
  ];
  return byObject.find(([pattern]) => pattern.test(api))?.[1] ?? ErrorDomain.DOM;
}

/** Builds the REMOTE program table over `context`. */
export function remoteProgram(context: ProgramContext): ProgramTable {
  const { domains, sessions } = context;
  const table = new ProgramTable(RpcProgram.REMOTE);
  const requireOpen = (call: CallContext): void => sessions.of(call.connection).requireOpen();

  table.define(RemoteProc.AUTH_LIST, procedure(remoteProcedures.authList, () => ({ types: [AuthType.NONE] })));
  table.define(
    RemoteProc.CONNECT_SUPPORTS_FEATURE,
    procedure(remoteProcedures.connectSupportsFeature, ({ feature }, call) => {
      const session = sessions.of(call.connection);
      // Asked before CONNECT_OPEN by virsh: libvirtd answers it without a connection.
      if (feature === Feature.PROGRAM_KEEPALIVE) {
        session.keepalive?.start();
        return { supported: 1 };
      }
      session.requireOpen();
      const supported =
        feature === Feature.REMOTE_EVENT_CALLBACK || feature === Feature.REMOTE_CLOSE_CALLBACK || (feature === Feature.FD_PASSING && call.connection.receivesFds);
      return { supported: supported ? 1 : 0 };
    }),
  );
  table.define(
    RemoteProc.CONNECT_OPEN,
    procedure(remoteProcedures.connectOpen, ({ flags }, call) => {
      const session = sessions.of(call.connection);
      if (session.state !== 'new') {
        throw RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.RPC, 'connection already open');
      }
      if (flags & CONNECT_READ_ONLY) session.readOnly = true;
      session.transition('open');
    }),
  );
  table.define(
    RemoteProc.CONNECT_CLOSE,
    procedure(remoteProcedures.connectClose, (_args, call) => {
      requireOpen(call);
      sessions.end(call.connection);
    }),
  );
  table.define(
    RemoteProc.CONNECT_GET_TYPE,
    procedure(remoteProcedures.connectGetType, (_args, call) => {
      requireOpen(call);
      return { type: 'QEMU' };
    }),
  );
  table.define(
    RemoteProc.CONNECT_GET_VERSION,
    procedure(remoteProcedures.connectGetVersion, (_args, call) => {
      requireOpen(call);
      const first = domains.all()[0];
      return { hvVer: first ? hypervisorVersion(first.monitor) : 0n };
    }),
  );
  table.define(
    RemoteProc.CONNECT_GET_URI,
    procedure(remoteProcedures.connectGetUri, (_args, call) => {
      requireOpen(call);
      return { uri: DEFAULT_URI };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_LOOKUP_BY_ID,
    procedure(remoteProcedures.domainLookupById, ({ id }, call) => {
      requireOpen(call);
      return { dom: wireDomain(domains.byId(id)) };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_LOOKUP_BY_NAME,
    procedure(remoteProcedures.domainLookupByName, ({ name }, call) => {
      requireOpen(call);
      call.note.domain = name;
      return { dom: domains.lookUpName(name) };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_LOOKUP_BY_UUID,
    procedure(remoteProcedures.domainLookupByUuid, ({ uuid }, call) => {
      requireOpen(call);
      return { dom: domains.lookUpUuid(uuid) };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_IS_ACTIVE,
    procedure(remoteProcedures.domainIsActive, ({ dom }, call) => {
      requireOpen(call);
      // Running while its monitor is up; shut off while it is gone.
      return { active: domains.find(dom).active === undefined ? 0 : 1 };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_SUSPEND,
    procedure(remoteProcedures.domainSuspend, async ({ dom }, call) => {
      await runStateCommand(context, openDomain(context, call, dom, 'virDomainSuspend'), 'stop', call.signal);
    }),
  );
  table.define(
    RemoteProc.DOMAIN_RESUME,
    procedure(remoteProcedures.domainResume, async ({ dom }, call) => {
      await runStateCommand(context, openDomain(context, call, dom, 'virDomainResume'), 'cont', call.signal);
    }),
  );
  table.define(
    RemoteProc.CONNECT_REGISTER_CLOSE_CALLBACK,
    procedure(remoteProcedures.connectRegisterCloseCallback, (_args, call) => requireOpen(call)),
  );
  table.define(
    RemoteProc.CONNECT_UNREGISTER_CLOSE_CALLBACK,
    procedure(remoteProcedures.connectUnregisterCloseCallback, (_args, call) => requireOpen(call)),
  );
  defineDomainProcedures(table, context);
  defineDomainEventCallbacks(table, context);
  table.unknownProcedureError = unsupportedCallError;
  return table;
}
