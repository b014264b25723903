/**
 * The audit line of a libvirt call: every call a client makes through a
 * libvirt socket but the connection's own handshake (AUTH_LIST,
 * CONNECT_SUPPORTS_FEATURE, CONNECT_OPEN / CLOSE, the close-callback
 * registration), recorded like a socket command (lib/proxy/audit.ts):
 * the domain as `monitor`, the socket, the connection id as `client`,
 * `origin` libvirt, the API as `procedure`, and
 *
 * - `command`: the QMP command a monitor-command call ran (`query-status`),
 *   `human-monitor-command` for an HMP line (the line in `line`), else the
 *   API name;
 * - `outcome`: `ok`; `error` with the QMP error class of a pass-through
 *   reply that is a QMP error, or libvirt's error code name
 *   (`NO_SUPPORT`, `NO_DOMAIN`, ...) of a failed call; `denied` for a
 *   read-only refusal.
 */
import type { AuditRecord, AuditSink } from '../audit-sink.js';
import { parseJsonLossless, stringifyJson } from '../qmp/json.js';
import type { CallReport } from './dispatch.js';
import { ErrorCode, QemuProc, RemoteProc, RpcProgram } from './protocol.js';
import { remoteApiName } from './procedure-names.js';

const HANDSHAKE = new Set<number>([
  RemoteProc.AUTH_LIST,
  RemoteProc.CONNECT_SUPPORTS_FEATURE,
  RemoteProc.CONNECT_OPEN,
  RemoteProc.CONNECT_CLOSE,
  RemoteProc.CONNECT_REGISTER_CLOSE_CALLBACK,
  RemoteProc.CONNECT_UNREGISTER_CLOSE_CALLBACK,
]);

const QEMU_APIS = new Map<number, string>([
  [QemuProc.DOMAIN_MONITOR_COMMAND, 'virDomainQemuMonitorCommand'],
  [QemuProc.DOMAIN_AGENT_COMMAND, 'virDomainQemuAgentCommand'],
  [QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_REGISTER, 'virConnectDomainQemuMonitorEventRegister'],
  [QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER, 'virConnectDomainQemuMonitorEventDeregister'],
  [QemuProc.DOMAIN_MONITOR_COMMAND_WITH_FILES, 'virDomainQemuMonitorCommandWithFiles'],
]);

const CODE_NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** An HMP line's command words: `info` keeps its subcommand, anything else its first word. */
export function hmpCommandWords(line: string): string {
  const words = line.trim().split(/\s+/);
  return words[0] === 'info' && words[1] !== undefined ? `info ${words[1]}` : (words[0] ?? '');
}

/** The API a call reached, by program and procedure. */
function apiOf(prog: number, proc: number): string {
  if (prog === RpcProgram.QEMU) return QEMU_APIS.get(proc) ?? `qemu procedure ${proc}`;
  if (prog === RpcProgram.REMOTE) return remoteApiName(proc) ?? `remote procedure ${proc}`;
  return `program ${prog >>> 0} procedure ${proc}`;
}

/** The QMP command name and arguments of a pass-through command's text; undefined when it is not a JSON object with `execute`. */
export function qmpCommandOf(text: string): { name: string; argumentsJson: string | undefined } | undefined {
  try {
    const value = parseJsonLossless(text) as { execute?: unknown; arguments?: unknown } | null;
    if (value === null || typeof value !== 'object' || typeof value.execute !== 'string') return undefined;
    return { name: value.execute, argumentsJson: value.arguments === undefined ? undefined : stringifyJson(value.arguments) };
  } catch {
    return undefined;
  }
}

/** Records `report` on `audit` as coming through the libvirt socket `socket`. */
export function auditCall(audit: AuditSink, socket: string, report: CallReport): void {
  const { header, note, error } = report;
  if (header.prog === RpcProgram.REMOTE && HANDSHAKE.has(header.proc)) return;
  const procedure = apiOf(header.prog, header.proc);
  const record: AuditRecord = {
    monitor: note.domain ?? '',
    socket,
    client: report.connection.id,
    command: procedure,
    outcome: 'ok',
    origin: 'libvirt',
    procedure,
  };
  if (note.monitorCommand !== undefined) {
    if (note.hmp) {
      record.command = 'human-monitor-command';
      record.line = audit.recordsArguments ? note.monitorCommand : hmpCommandWords(note.monitorCommand);
    } else {
      // virsh wraps a bare word as {"execute":WORD}; the raw API sends JSON as it is.
      const qmp = qmpCommandOf(note.monitorCommand);
      record.command = qmp?.name ?? note.monitorCommand.trim().split(/\s+/)[0] ?? '';
      if (audit.recordsArguments && qmp?.argumentsJson !== undefined) record.argumentsJson = qmp.argumentsJson;
    }
  }
  if (note.fds !== undefined) record.fds = note.fds;
  if (error !== undefined) {
    record.outcome = error.remote.code === ErrorCode.OPERATION_DENIED ? 'denied' : 'error';
    record.errorClass = CODE_NAMES.get(error.remote.code) ?? `code ${error.remote.code}`;
  } else if (note.qmpErrorClass !== undefined) {
    record.outcome = 'error';
    record.errorClass = note.qmpErrorClass;
  }
  audit.record(record);
}
