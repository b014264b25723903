/**
 * The QEMU program table (qemu_protocol.x): libvirt-qemu's pass-through
 * calls, served through qmpx's pass-through API ('qmpx/passthrough') so the
 * RPC endpoint and library callers get the same semantics.
 *
 * - 1 DOMAIN_MONITOR_COMMAND / 7 ..._WITH_FILES: `monitorCommand`, its reply
 *   reshaped as libvirt's (libvirt-result.ts). Proc 7 takes at most one fd,
 *   as libvirtd does (`at most 1 fd can be passed to qemu along with a
 *   command`), and hands it to QEMU with `getfd` / `add-fd` (an HMP `getfd`
 *   line on a human-monitor upstream). With any other command the fd is
 *   closed unsent and the command runs alone: libvirtd would pass it along
 *   and QEMU would keep it for the next getfd / add-fd of any client. Proc
 *   7 without fds is proc 1.
 * - 3 DOMAIN_AGENT_COMMAND: through the domain's guest-agent socket, one
 *   connection per call (lib/qga resynchronises each time), else libvirt's
 *   code 74 `QEMU guest agent is not configured`.
 * - 4 / 5 register and deregister: `registerMonitorEvent` does the REGEX /
 *   NOCASE filtering server-side; each delivery goes out as proc 6, type
 *   MESSAGE, serial 1 (as libvirtd sends it, mitm-ev). Refused on a
 *   read-only connection, as libvirt refuses them.
 */
import { InvalidArgumentError, ProtocolError } from '../errors.js';
import type { GuestAgent, Monitor } from '../contract.js';
import { connectAgent } from '../monitor.js';
import { deregisterMonitorEvent, monitorCommand, registerMonitorEvent } from '../passthrough/index.js';
import { parseJsonLossless, stringifyJson } from '../qmp/json.js';
import { qemuProcedures } from './catalog.js';
import { ProgramTable, procedure, type CallContext } from './dispatch.js';
import { wireDomain, type LibvirtDomain } from './domains.js';
import { RpcError } from './rpc-error.js';
import { carriesLibvirtId, hasMember, libvirtResult } from './libvirt-result.js';
import { monitorCommandError, unsupportedFlags } from './qemu-errors.js';
import { qmpCommandOf } from './call-audit.js';
import { monitorEventMessage, type MonitorCommandArgs } from './messages.js';
import { ErrorCode, ErrorDomain, MessageStatus, MessageType, MonitorCommandFlag, MonitorEventFlag, QemuProc, RPC_PROTOCOL_VERSION, RpcProgram } from './protocol.js';
import { openDomain, readOnlyError, type ProgramContext } from './program-context.js';
import { encodeXdr } from './xdr.js';
import { hmpLineTakesFds, takesFds } from '../session/fd-rules.js';

/** libvirt's default agent wait (QEMU_AGENT_WAIT_TIME) when the caller passes -1. */
const AGENT_DEFAULT_TIMEOUT_MS = 5000;
/** VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK: wait for ever. */
const AGENT_TIMEOUT_BLOCK = -2;

/** Per-domain counters for libvirt's `libvirt-N` ids, by domain name. */
class CommandIds {
  private readonly next = new Map<string, number>();
  take(domain: LibvirtDomain): number {
    const id = this.next.get(domain.name) ?? 1;
    this.next.set(domain.name, id + 1);
    return id;
  }
}

/**
 * Proc 1 / 7 on `domain`: the pass-through's semantics, libvirt's checks first
 * (flags, and a caller's own id, which libvirt refuses when it adds its own).
 */
async function runMonitorCommand(
  domain: LibvirtDomain,
  args: MonitorCommandArgs,
  ids: CommandIds,
  functionName: string,
  call: CallContext,
): Promise<{ result: string }> {
  const signal = call.signal;
  call.note.monitorCommand = args.cmd;
  call.note.hmp = (args.flags & MonitorCommandFlag.HMP) !== 0;
  if (args.flags & ~MonitorCommandFlag.HMP) throw unsupportedFlags(args.flags & ~MonitorCommandFlag.HMP, functionName, ErrorDomain.QEMU);
  const isQmp = (args.flags & MonitorCommandFlag.HMP) === 0;
  if (isQmp && carriesLibvirtId(args.cmd) && hasMember(args.cmd, 'id')) {
    throw RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.QEMU, "Unable to append command 'id' string");
  }
  const fds = call.fds.length > 0 && commandTakesFds(args.cmd, !isQmp) ? call.fds : undefined;
  if (fds !== undefined) call.note.fds = fds.length;
  let output: string;
  const settled = domain.watch?.callSent(isQmp ? (qmpCommandOf(args.cmd)?.name ?? 'other') : 'human-monitor-command');
  try {
    output = await monitorCommand(domain.monitor, args.cmd, args.flags, fds === undefined ? { signal } : { signal, fds });
    settled?.(true);
  } catch (error) {
    settled?.(error instanceof ProtocolError && error.evidence !== undefined);
    if (!(error instanceof ProtocolError) || error.evidence === undefined) throw monitorCommandError(error, args.cmd);
    ids.take(domain); // QEMU answered: libvirt's command had used its id
    throw unparseableReply(error.evidence, error.message);
  }
  if (args.flags & MonitorCommandFlag.HMP) return { result: output };
  const result = libvirtResult(output, args.cmd, ids.take(domain));
  call.note.qmpErrorClass = qmpErrorClassOf(result);
  if (result === output) {
    // Unchanged: not reshaped, perhaps because it is not JSON (QEMU's `inf`, `nan`); checked only then.
    try {
      parseJsonLossless(output);
    } catch (error) {
      throw unparseableReply(output, (error as Error).message);
    }
  }
  return { result };
}

/**
 * A reply of QEMU's that libvirt's JSON reader cannot read answers that one
 * call as libvirt 9.0 answers it (`internal error: cannot parse json TEXT:
 * REASON`, domain NONE; the reason is qmpx's). libvirt then also gives up on
 * the monitor; qmpx keeps serving it, every later reply in its place.
 */
function unparseableReply(text: string, reason: string): RpcError {
  return RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.NONE, `cannot parse json ${text}: ${reason}`);
}

/** The `class` of a libvirt-shaped QMP error reply (`{"id":"libvirt-N","error":{"class":...`), else undefined. */
function qmpErrorClassOf(result: string): string | undefined {
  if (!result.startsWith('{"id":') || !result.includes('"error":')) return undefined;
  try {
    const parsed = JSON.parse(result) as { error?: { class?: unknown } };
    return typeof parsed.error?.class === 'string' ? parsed.error.class : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `cmd` on the domain's guest agent; the reply compact, as libvirt's qemuAgentArbitraryCommand returns it. */
async function runAgentCommand(domain: LibvirtDomain, cmd: string, timeoutSeconds: number, signal: AbortSignal): Promise<string> {
  if (domain.agentPath === undefined) {
    throw RpcError.report(ErrorCode.ARGUMENT_UNSUPPORTED, ErrorDomain.QEMU, 'QEMU guest agent is not configured');
  }
  let request: { execute?: unknown; arguments?: unknown };
  try {
    request = parseJsonLossless(cmd) as typeof request;
  } catch (error) {
    throw RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.NONE, `cannot parse json ${cmd}: ${(error as Error).message}`);
  }
  if (typeof request !== 'object' || request === null || typeof request.execute !== 'string') {
    throw RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.QEMU, `unable to execute QEMU agent command: no 'execute' in ${cmd}`);
  }
  const timeoutMs = timeoutSeconds === AGENT_TIMEOUT_BLOCK ? undefined : timeoutSeconds > 0 ? timeoutSeconds * 1000 : AGENT_DEFAULT_TIMEOUT_MS;
  let agent: GuestAgent | undefined;
  try {
    agent = await connectAgent(domain.agentPath, { greetingTimeoutMs: timeoutMs ?? AGENT_DEFAULT_TIMEOUT_MS });
    const argumentsJson = request.arguments === undefined ? undefined : stringifyJson(request.arguments);
    const reply = await agent.send(request.execute, argumentsJson, { timeoutMs, signal, origin: { kind: 'passthrough' } });
    if (reply.kind === 'error') {
      throw RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.QEMU, `unable to execute QEMU agent command '${request.execute}': ${reply.message.error.desc}`);
    }
    // The agent echoes qmpx's own request id; libvirt's result is the bare `{"return":...}`.
    return stringifyJson({ return: reply.message.return });
  } catch (error) {
    if (error instanceof RpcError) throw error;
    throw RpcError.report(ErrorCode.ARGUMENT_UNSUPPORTED, ErrorDomain.QEMU, `QEMU guest agent is not connected: ${(error as Error).message}`, { cause: error });
  } finally {
    await agent?.close();
  }
}

/** Builds the QEMU program table over `context`. */
export function qemuProgram(context: ProgramContext): ProgramTable {
  const { domains, sessions } = context;
  const ids = new CommandIds();
  let nextCallbackId = 1;
  const table = new ProgramTable(RpcProgram.QEMU);

  table.define(
    QemuProc.DOMAIN_MONITOR_COMMAND,
    procedure(qemuProcedures.domainMonitorCommand, (args, call) =>
      runMonitorCommand(
        openDomain(context, call, args.dom, 'virDomainQemuMonitorCommand', ErrorDomain.NONE),
        args,
        ids,
        'qemuDomainQemuMonitorCommandWithFiles',
        call,
      ),
    ),
  );
  table.define(
    QemuProc.DOMAIN_MONITOR_COMMAND_WITH_FILES,
    procedure(qemuProcedures.domainMonitorCommandWithFiles, (args, call) => {
      // libvirt's order: read-only first (libvirt-qemu.c), then the driver's flags and fd count, then the domain.
      const session = sessions.of(call.connection);
      session.requireOpen();
      if (session.readOnly) throw readOnlyError('virDomainQemuMonitorCommandWithFiles', ErrorDomain.NONE);
      if (args.flags & ~MonitorCommandFlag.HMP) throw unsupportedFlags(args.flags & ~MonitorCommandFlag.HMP, 'qemuDomainQemuMonitorCommandWithFiles', ErrorDomain.QEMU);
      if (call.fdCount > 1) throw RpcError.report(ErrorCode.INVALID_ARG, ErrorDomain.QEMU, 'at most 1 fd can be passed to qemu along with a command');
      if (call.fds.length < call.fdCount) {
        throw RpcError.report(ErrorCode.NO_SUPPORT, ErrorDomain.QEMU, 'this connection cannot receive file descriptors (FD_PASSING is not supported here)');
      }
      const domain = openDomain(context, call, args.dom, 'virDomainQemuMonitorCommandWithFiles', ErrorDomain.NONE);
      return runMonitorCommand(domain, args, ids, 'qemuDomainQemuMonitorCommandWithFiles', call);
    }),
  );
  table.define(
    QemuProc.DOMAIN_AGENT_COMMAND,
    procedure(qemuProcedures.domainAgentCommand, async (args, call) => {
      const domain = openDomain(context, call, args.dom, 'virDomainQemuAgentCommand', ErrorDomain.NONE);
      if (args.flags !== 0) throw unsupportedFlags(args.flags, 'qemuDomainQemuAgentCommand', ErrorDomain.QEMU);
      return { result: await runAgentCommand(domain, args.cmd, args.timeout, call.signal) };
    }),
  );
  table.define(
    QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_REGISTER,
    procedure(qemuProcedures.connectDomainMonitorEventRegister, ({ dom, event, flags }, call) => {
      const session = sessions.of(call.connection);
      session.requireOpen();
      if (session.readOnly) throw readOnlyError('virConnectDomainQemuMonitorEventRegister', ErrorDomain.NONE);
      const known = MonitorEventFlag.REGEX | MonitorEventFlag.NOCASE;
      if (flags & ~known) throw unsupportedFlags(flags & ~known, 'virDomainQemuMonitorEventStateRegisterID', ErrorDomain.NONE);
      const callbackID = nextCallbackId++;
      // By domain id, so that a domain whose upstream reconnects keeps its callbacks, as libvirt keeps them across a restart.
      const wantedId = dom === null ? null : domains.resolve(dom).id;
      const attached = new Map<number, { monitor: Monitor; id: number }>();
      const detach = (domainId: number): void => {
        const attachment = attached.get(domainId);
        if (attachment === undefined) return;
        attached.delete(domainId);
        try {
          deregisterMonitorEvent(attachment.monitor, attachment.id);
        } catch {
          // Already ended with its monitor's close: nothing left to undo.
        }
      };
      const release = (): void => {
        for (const domainId of [...attached.keys()]) detach(domainId);
      };
      const attach = (domain: LibvirtDomain): void => {
        if (attached.get(domain.id)?.monitor === domain.monitor) return;
        detach(domain.id);
        const wire = wireDomain(domain);
        const id = registerMonitorEvent(
          domain.monitor,
          event,
          (name, seconds, micros, details) => {
            const body = encodeXdr(monitorEventMessage, { callbackID, dom: wire, event: name, seconds: BigInt(seconds), micros, details });
            call.connection.send(eventHeader(), body);
          },
          flags,
        );
        attached.set(domain.id, { monitor: domain.monitor, id });
      };
      const targets = (): readonly LibvirtDomain[] => domains.all().filter((domain) => wantedId === null || domain.id === wantedId);
      try {
        for (const domain of targets()) attach(domain);
      } catch (error) {
        release();
        throw registrationError(error);
      }
      const reattach = (): void => {
        for (const domain of targets()) {
          try {
            attach(domain);
          } catch (error) {
            context.logger.warn({ connection: call.connection.id, callbackID, err: error }, 'monitor event callback could not follow its domain');
          }
        }
      };
      session.registrations.set(callbackID, { callbackId: callbackID, release, reattach });
      context.logger.debug({ connection: call.connection.id, callbackID, event, flags, domains: attached.size }, 'monitor event callback registered');
      return { callbackID };
    }),
  );
  table.define(
    QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER,
    procedure(qemuProcedures.connectDomainMonitorEventDeregister, ({ callbackID }, call) => {
      const session = sessions.of(call.connection);
      session.requireOpen();
      if (session.readOnly) throw readOnlyError('virConnectDomainQemuMonitorEventDeregister', ErrorDomain.NONE);
      const registration = session.registrations.get(callbackID);
      if (!registration) throw RpcError.report(ErrorCode.RPC, ErrorDomain.RPC, `qemu monitor event callback ${callbackID} not registered`);
      session.registrations.delete(callbackID);
      registration.release();
      context.logger.debug({ connection: call.connection.id, callbackID }, 'monitor event callback deregistered');
    }),
  );
  return table;
}

/** Whether the command a libvirt client sent takes the fd sent with it: a QMP getfd / add-fd, or an HMP getfd line. */
function commandTakesFds(cmd: string, hmp: boolean): boolean {
  if (hmp) return hmpLineTakesFds(cmd);
  try {
    const value = parseJsonLossless(cmd) as { execute?: unknown } | null;
    return value !== null && typeof value === 'object' && typeof value.execute === 'string' && takesFds(value.execute);
  } catch {
    return false;
  }
}

/** libvirtd sends every DOMAIN_MONITOR_EVENT with serial 1 (mitm-ev). */
function eventHeader(): { prog: number; vers: number; proc: number; type: number; serial: number; status: number } {
  return { prog: RpcProgram.QEMU, vers: RPC_PROTOCOL_VERSION, proc: QemuProc.DOMAIN_MONITOR_EVENT, type: MessageType.MESSAGE, serial: 1, status: MessageStatus.OK };
}

/**
 * A refused registration: the pass-through's InvalidArgumentError (a bad
 * regex: `failed to compile regex '(': ...`) is libvirt's code 8, domain 0
 * (python-libvirt-qemu.txt); anything else (a closed monitor) is an internal error.
 */
function registrationError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof InvalidArgumentError) return RpcError.report(ErrorCode.INVALID_ARG, ErrorDomain.NONE, message, { cause: error });
  return RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.QEMU, message, { cause: error });
}
