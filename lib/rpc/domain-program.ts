/**
 * The REMOTE procedures behind `virsh list`, `dominfo`, `domstate`,
 * `dumpxml` / `domblklist` / `domiflist` and the lifecycle calls, and
 * libvirt-python's `listAllDomains()`, `state()`, `info()`: defined on the
 * REMOTE table that remote-program.ts builds.
 *
 * What qmpx answers where libvirtd reads its own configuration: no domain is
 * persistent (qmpx holds no definition: `Persistent: no`), none autostarts
 * or has a managed save image, the security model is libvirt's `none`
 * (DOI 0, no label), there are no taint messages, and the OS type is hvm.
 *
 * The lifecycle calls, as QMP commands:
 * - reset: `system_reset`.
 * - shutdown: `system_powerdown` (ACPI; the guest decides).
 * - reboot: `system_powerdown`, then, once QEMU reports the guest's
 *   SHUTDOWN and QEMU is still there (libvirt starts QEMU with
 *   -no-shutdown), `system_reset` and `cont`, as libvirt's "fake reboot".
 * - destroy: `quit`; the call returns once the monitor has closed. What
 *   follows is the launch's: a QEMU `serve --launch` started without
 *   --restart ends serve; with --restart it is started again (the domain is
 *   running again, STARTED); behind --upstream the domain is shut off until
 *   the upstream can be reached again.
 */
import type { Monitor } from '../monitor.js';
import type { CallContext, ProgramTable } from './dispatch.js';
import { procedure } from './dispatch.js';
import { domainFacts } from './domain-facts.js';
import { domainProcedures } from './domain-catalog.js';
import { activeDomainXml, inactiveDomainXml } from './domain-xml.js';
import { wireDomain, wireInactive, type FoundDomain, type LibvirtDomain } from './domains.js';
import { RpcError } from './rpc-error.js';
import { DomainState, type StateAndReason } from './lifecycle.js';
import type { Domain } from './messages.js';
import { ErrorCode, ErrorDomain, RemoteProc } from './protocol.js';
import { unsupportedFlags } from './qemu-errors.js';
import { openDomain, type ProgramContext } from './program-context.js';

/** virConnectListAllDomainsFlags, by group: a group with no flag set filters nothing. */
const ListFlag = {
  ACTIVE: 1,
  INACTIVE: 2,
  PERSISTENT: 4,
  TRANSIENT: 8,
  RUNNING: 16,
  PAUSED: 32,
  SHUTOFF: 64,
  OTHER: 128,
  MANAGEDSAVE: 256,
  NO_MANAGEDSAVE: 512,
  AUTOSTART: 1024,
  NO_AUTOSTART: 2048,
  HAS_SNAPSHOT: 4096,
  NO_SNAPSHOT: 8192,
  HAS_CHECKPOINT: 16384,
  NO_CHECKPOINT: 32768,
} as const;
const ALL_LIST_FLAGS = 0xffff;

/** virDomainShutdownFlagValues / virDomainRebootFlagValues: only the ACPI way is served. */
const POWER_BUTTON_ACPI = 1;
/** VIR_DOMAIN_DESTROY_GRACEFUL: accepted; `quit` is always graceful towards QEMU's own files. */
const DESTROY_GRACEFUL = 1;
/** How long destroy waits for QEMU to close its monitor after `quit`. */
const DESTROY_WAIT_MS = 30_000;

/** Whether a domain in `state` passes the list flags (libvirt's virDomainObjListFilter). */
function passesListFilter(active: boolean, state: number, flags: number): boolean {
  const group = (a: number, b: number, matchesA: boolean): boolean => (flags & (a | b)) === 0 || (matchesA ? (flags & a) !== 0 : (flags & b) !== 0);
  if (!group(ListFlag.ACTIVE, ListFlag.INACTIVE, active)) return false;
  if (!group(ListFlag.PERSISTENT, ListFlag.TRANSIENT, false)) return false;
  const stateFlags = ListFlag.RUNNING | ListFlag.PAUSED | ListFlag.SHUTOFF | ListFlag.OTHER;
  if ((flags & stateFlags) !== 0) {
    const wanted =
      state === DomainState.RUNNING ? ListFlag.RUNNING : state === DomainState.PAUSED ? ListFlag.PAUSED : state === DomainState.SHUTOFF ? ListFlag.SHUTOFF : ListFlag.OTHER;
    if ((flags & wanted) === 0) return false;
  }
  if (!group(ListFlag.MANAGEDSAVE, ListFlag.NO_MANAGEDSAVE, false)) return false;
  if (!group(ListFlag.AUTOSTART, ListFlag.NO_AUTOSTART, false)) return false;
  if (!group(ListFlag.HAS_SNAPSHOT, ListFlag.NO_SNAPSHOT, false)) return false;
  return group(ListFlag.HAS_CHECKPOINT, ListFlag.NO_CHECKPOINT, false);
}

/** A QMP command of a lifecycle call; QEMU's refusal is libvirt's OPERATION_FAILED. */
async function runLifecycleCommand(monitor: Monitor, command: string, signal: AbortSignal): Promise<void> {
  try {
    await monitor.execute(command, undefined, { signal, origin: { kind: 'passthrough' } });
  } catch (error) {
    throw RpcError.report(ErrorCode.OPERATION_FAILED, ErrorDomain.QEMU, (error as Error).message, { cause: error });
  }
}

function checkFlags(flags: number, allowed: number, functionName: string): void {
  if ((flags & ~allowed) !== 0) throw unsupportedFlags(flags & ~allowed, functionName, ErrorDomain.QEMU);
}

/** Defines the domain procedures on `table` (the REMOTE program's). */
export function defineDomainProcedures(table: ProgramTable, context: ProgramContext): void {
  const { domains, sessions, lifecycle } = context;

  /** The domain a read call names, after the open check; notes it for the audit. */
  const readDomain = (call: CallContext, dom: Domain): FoundDomain => {
    sessions.of(call.connection).requireOpen();
    const found = domains.find(dom);
    call.note.domain = found.active?.name ?? found.inactive?.name;
    return found;
  };
  /** The running domain a write call names, refused on read-only connections with `api`. */
  const writeDomain = (call: CallContext, dom: Domain, api: string): LibvirtDomain => {
    const domain = openDomain(context, call, dom, api);
    call.note.domain = domain.name;
    return domain;
  };
  const stateOf = async (found: FoundDomain): Promise<StateAndReason> =>
    found.active !== undefined ? lifecycle.stateOf(found.active) : lifecycle.stateOfInactive(found.inactive.id);

  table.define(
    RemoteProc.CONNECT_LIST_ALL_DOMAINS,
    procedure(domainProcedures.connectListAllDomains, async ({ needResults, flags }, call) => {
      sessions.of(call.connection).requireOpen();
      checkFlags(flags, ALL_LIST_FLAGS, 'qemuConnectListAllDomains');
      const active = [...domains.all()].sort((a, b) => a.id - b.id);
      lifecycle.sync(active);
      const listed: Domain[] = [];
      for (const domain of active) {
        if (passesListFilter(true, (await lifecycle.stateOf(domain)).state, flags)) listed.push(wireDomain(domain));
      }
      for (const domain of domains.inactive()) {
        if (passesListFilter(false, DomainState.SHUTOFF, flags)) listed.push(wireInactive(domain));
      }
      return { domains: needResults !== 0 ? listed : [], count: listed.length };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_GET_STATE,
    procedure(domainProcedures.domainGetState, async ({ dom, flags }, call) => {
      const found = readDomain(call, dom);
      checkFlags(flags, 0, 'qemuDomainGetState');
      return stateOf(found);
    }),
  );
  table.define(
    RemoteProc.DOMAIN_GET_INFO,
    procedure(domainProcedures.domainGetInfo, async ({ dom }, call) => {
      const found = readDomain(call, dom);
      const { state } = await stateOf(found);
      if (found.active === undefined) return { state, maxMemKiB: 0n, memoryKiB: 0n, vcpus: 0, cpuTimeNs: 0n };
      return { state, ...(await domainFacts(found.active.monitor)) };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_GET_OS_TYPE,
    procedure(domainProcedures.domainGetOsType, ({ dom }, call) => {
      readDomain(call, dom);
      return { text: 'hvm' };
    }),
  );
  const constant = (proc: number, spec: typeof domainProcedures.domainIsPersistent, value: number): void => {
    table.define(
      proc,
      procedure(spec, ({ dom }, call) => {
        readDomain(call, dom);
        return { value };
      }),
    );
  };
  constant(RemoteProc.DOMAIN_IS_PERSISTENT, domainProcedures.domainIsPersistent, 0);
  constant(RemoteProc.DOMAIN_GET_AUTOSTART, domainProcedures.domainGetAutostart, 0);
  table.define(
    RemoteProc.DOMAIN_HAS_MANAGED_SAVE_IMAGE,
    procedure(domainProcedures.domainHasManagedSaveImage, ({ dom, flags }, call) => {
      readDomain(call, dom);
      checkFlags(flags, 0, 'qemuDomainHasManagedSaveImage');
      return { value: 0 };
    }),
  );
  table.define(
    RemoteProc.NODE_GET_SECURITY_MODEL,
    procedure(domainProcedures.nodeGetSecurityModel, (_args, call) => {
      sessions.of(call.connection).requireOpen();
      return { model: 'none', doi: '0' };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_GET_SECURITY_LABEL,
    procedure(domainProcedures.domainGetSecurityLabel, ({ dom }, call) => {
      readDomain(call, dom);
      return { label: '', enforcing: 0 };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_GET_MESSAGES,
    procedure(domainProcedures.domainGetMessages, ({ dom, flags }, call) => {
      readDomain(call, dom);
      checkFlags(flags, 3, 'qemuDomainGetMessages');
      return { msgs: [] };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_GET_XML_DESC,
    procedure(domainProcedures.domainGetXmlDesc, async ({ dom, flags }, call) => {
      const found = readDomain(call, dom);
      checkFlags(flags, 0xf, 'qemuDomainGetXMLDesc');
      if (found.active === undefined) return { text: inactiveDomainXml(found.inactive.name, found.inactive.uuid) };
      return { text: await activeDomainXml(found.active.monitor, found.active) };
    }),
  );
  table.define(
    RemoteProc.DOMAIN_RESET,
    procedure(domainProcedures.domainReset, async ({ dom, flags }, call) => {
      const domain = writeDomain(call, dom, 'virDomainReset');
      checkFlags(flags, 0, 'qemuDomainReset');
      await runLifecycleCommand(domain.monitor, 'system_reset', call.signal);
    }),
  );
  const shutdown = async (call: CallContext, dom: Domain, flags: number, api: string): Promise<void> => {
    const domain = writeDomain(call, dom, api);
    checkFlags(flags, POWER_BUTTON_ACPI, api === 'virDomainReboot' ? 'qemuDomainReboot' : 'qemuDomainShutdownFlags');
    if (api === 'virDomainReboot') lifecycle.expect(domain, 'reboot');
    await runLifecycleCommand(domain.monitor, 'system_powerdown', call.signal);
  };
  table.define(RemoteProc.DOMAIN_SHUTDOWN, procedure(domainProcedures.domainShutdown, ({ dom }, call) => shutdown(call, dom, 0, 'virDomainShutdown')));
  table.define(
    RemoteProc.DOMAIN_SHUTDOWN_FLAGS,
    procedure(domainProcedures.domainShutdownFlags, ({ dom, flags }, call) => shutdown(call, dom, flags, 'virDomainShutdownFlags')),
  );
  table.define(RemoteProc.DOMAIN_REBOOT, procedure(domainProcedures.domainReboot, ({ dom, flags }, call) => shutdown(call, dom, flags, 'virDomainReboot')));
  const destroy = async (call: CallContext, dom: Domain, flags: number, api: string): Promise<void> => {
    const domain = writeDomain(call, dom, api);
    checkFlags(flags, DESTROY_GRACEFUL, 'qemuDomainDestroyFlags');
    lifecycle.expect(domain, 'destroy');
    const monitor = domain.monitor;
    try {
      await monitor.execute('quit', undefined, { signal: call.signal, origin: { kind: 'passthrough' } });
    } catch (error) {
      // QEMU may close the monitor before its reply is read: the monitor closing is what counts.
      context.logger.debug({ domain: domain.name, err: error }, 'destroy: quit got no reply');
    }
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      monitor.closed.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), DESTROY_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (!closed) throw RpcError.report(ErrorCode.OPERATION_FAILED, ErrorDomain.QEMU, 'failed to terminate process: QEMU did not exit after quit');
  };
  table.define(RemoteProc.DOMAIN_DESTROY, procedure(domainProcedures.domainDestroy, ({ dom }, call) => destroy(call, dom, 0, 'virDomainDestroy')));
  table.define(
    RemoteProc.DOMAIN_DESTROY_FLAGS,
    procedure(domainProcedures.domainDestroyFlags, ({ dom, flags }, call) => destroy(call, dom, flags, 'virDomainDestroyFlags')),
  );
}
