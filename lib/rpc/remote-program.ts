/**
 * The REMOTE program table (remote_protocol.x) as far as virsh, libvirt-python
 * and virt-qemu-qmp-proxy need it for the QEMU pass-through (docs/monitor-facts.md §6).
 *
 * Features answered: PROGRAM_KEEPALIVE 1 (and the server starts pinging, as
 * libvirtd's remoteDispatchConnectSupportsFeature does), REMOTE_EVENT_CALLBACK
 * 1, REMOTE_CLOSE_CALLBACK 1 (360/361 are accepted; the only way this
 * endpoint's connection closes is the socket closing, which the client
 * notices itself), FD_PASSING 0 (Node cannot receive SCM_RIGHTS fds), every
 * other feature 0.
 */
import type { Logger } from '../log.js';
import type { Monitor } from '../contract.js';
import type { SessionStore } from './client-session.js';
import { remoteProcedures } from './catalog.js';
import { ProgramTable, procedure, type CallContext } from './dispatch.js';
import { wireDomain, type DomainRegistry, type LibvirtDomain } from './domains.js';
import { RpcError } from './errors.js';
import { AuthType, ErrorCode, ErrorDomain, Feature, RemoteProc, RpcProgram } from './protocol.js';

/** CONNECT_OPEN flag VIR_CONNECT_RO. */
const CONNECT_READ_ONLY = 1;
/** What CONNECT_GET_URI returns: the URI virsh and python asked for when they opened. */
const DEFAULT_URI = 'qemu:///system';

/** What both program tables share. */
export interface ProgramContext {
  readonly domains: DomainRegistry;
  readonly sessions: SessionStore;
  readonly logger: Logger;
}

/**
 * libvirt's refusal of a write on a read-only connection (virCheckReadOnlyGoto),
 * raised from the error domain of the file that holds the API: DOM for
 * libvirt-domain.c, NONE for libvirt-qemu.c.
 */
export function readOnlyError(apiName: string, errorDomain: number = ErrorDomain.DOM): RpcError {
  return RpcError.report(ErrorCode.OPERATION_DENIED, errorDomain, `read only access prevents ${apiName}`);
}

/**
 * The open session's domain for `dom`, refusing writes on read-only
 * sessions with `writeApi`'s name, from `refusalDomain` (see readOnlyError).
 */
export function openDomain(
  context: ProgramContext,
  call: CallContext,
  dom: { uuid: Buffer; name: string; id: number },
  writeApi?: string,
  refusalDomain: number = ErrorDomain.DOM,
): LibvirtDomain {
  const session = context.sessions.of(call.connection);
  session.requireOpen();
  if (writeApi !== undefined && session.readOnly) throw readOnlyError(writeApi, refusalDomain);
  return context.domains.resolve(dom);
}

/** QEMU's version as libvirt encodes it: major * 1e6 + minor * 1e3 + micro. */
function hypervisorVersion(monitor: Monitor): bigint {
  const qemu = monitor.greeting?.QMP.version.qemu;
  if (!qemu) return 0n;
  return BigInt(qemu.major) * 1_000_000n + BigInt(qemu.minor) * 1_000n + BigInt(qemu.micro);
}

/** A state-changing call through the monitor, libvirt's wording when QEMU refuses. */
async function runStateCommand(monitor: Monitor, command: 'stop' | 'cont', signal: AbortSignal): Promise<void> {
  try {
    await monitor.execute(command, undefined, { signal, origin: { kind: 'passthrough' } });
  } catch (error) {
    throw RpcError.report(ErrorCode.OPERATION_FAILED, ErrorDomain.QEMU, (error as Error).message, { cause: error });
  }
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
      const supported = feature === Feature.REMOTE_EVENT_CALLBACK || feature === Feature.REMOTE_CLOSE_CALLBACK;
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
      return { dom: wireDomain(domains.byName(name)) };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_LOOKUP_BY_UUID,
    procedure(remoteProcedures.domainLookupByUuid, ({ uuid }, call) => {
      requireOpen(call);
      return { dom: wireDomain(domains.byUuid(uuid)) };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_IS_ACTIVE,
    procedure(remoteProcedures.domainIsActive, ({ dom }, call) => {
      openDomain(context, call, dom);
      // A served domain has a live monitor: it is running as far as libvirt's API means it.
      return { active: 1 };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_SUSPEND,
    procedure(remoteProcedures.domainSuspend, async ({ dom }, call) => {
      await runStateCommand(openDomain(context, call, dom, 'virDomainSuspend').monitor, 'stop', call.signal);
    }),
  );
  table.define(
    RemoteProc.DOMAIN_RESUME,
    procedure(remoteProcedures.domainResume, async ({ dom }, call) => {
      await runStateCommand(openDomain(context, call, dom, 'virDomainResume').monitor, 'cont', call.signal);
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
  return table;
}
