/**
 * The audit log: one NDJSON line per downstream command, appended to a file.
 *
 *   {"time":"2026-01-02T03:04:05.678Z","monitor":"vm1","socket":"/run/qmpx/vm1.qmp",
 *    "client":3,"command":"stop","outcome":"ok"}
 *
 * Calls through a libvirt socket carry `"origin":"libvirt"` and the
 * libvirt API they called (`"procedure":"virDomainSuspend"`); `command` is
 * then the QMP command a monitor-command call ran, else the API. An HMP
 * line (libvirt's `--hmp`) is recorded as `"line"`: the whole line when
 * arguments are recorded, else its command words (`info status`,
 * `set_password`), since the rest may be a secret:
 *
 *   {"time":...,"monitor":"vm1","socket":"/run/qmpx/libvirt.sock","client":7,
 *    "command":"human-monitor-command","outcome":"ok","origin":"libvirt",
 *    "procedure":"virDomainQemuMonitorCommand","line":"info status"}
 *
 * `outcome` is `ok`, `error` (with `errorClass`), `denied` (the socket's
 * policy refused it), `lost` (the upstream went away first) or `dropped`
 * (the client left before the reply). Arguments are recorded only when
 * asked for (`arguments: true`), since they can hold passwords and keys;
 * they are written as the client sent them, number tokens exact.
 *
 * Clients choose what goes into a line, so every line is bounded and so is
 * the rate of the lines a client can cause without being allowed anything:
 *
 * - A client-supplied field longer than its limit is cut at a character
 *   boundary and marked: `"cut":{"command":102400}` gives the field's full
 *   length in bytes. `command` and `errorClass` keep their first
 *   MAX_AUDIT_NAME_BYTES bytes; cut `arguments` become a JSON string holding
 *   the first MAX_AUDIT_ARGUMENTS_BYTES bytes of their text (a prefix of
 *   JSON is not JSON).
 * - Denied commands are bounded per socket: within a window of
 *   `deniedWindowMs` the first `deniedPerWindow` are written, the others
 *   folded into one line when the window ends:
 *   `{"time":...,"monitor":...,"socket":...,"outcome":"denied","folded":N,"clients":K,"since":...}`.
 *   Per socket, not per client, so that opening more connections buys no
 *   more lines.
 * - Writing survives failures (audit-file.ts): a full disk is retried, and
 *   once the file takes lines again a gap line says how many were lost:
 *   `{"time":...,"outcome":"audit-gap","lost":N,"since":...,"error":"ENOSPC: ..."}`.
 */
import type { Logger } from '../log.js';
import { AuditFile } from './audit-file.js';

import type { AuditRecord, AuditSink } from '../audit-sink.js';

export { noAudit, type AuditOutcome, type AuditRecord, type AuditSink } from '../audit-sink.js';

/** Bytes of a command name or error class kept in a line; QMP's own names are under 64. */
export const MAX_AUDIT_NAME_BYTES = 128;
/** Bytes of arguments text kept in a line; an HMP command line (at most 4,095 bytes) fits whole. */
export const MAX_AUDIT_ARGUMENTS_BYTES = 8192;
/** Denied commands written in full per socket and window; the rest are folded. */
export const DEFAULT_DENIED_PER_WINDOW = 10;
export const DEFAULT_DENIED_WINDOW_MS = 10_000;
/** Lines that may wait unwritten (a slow or failing file); past it they are counted as lost. */
export const DEFAULT_MAX_QUEUED_AUDIT_BYTES = 1024 * 1024;
/** First retry after a write error; doubling up to DEFAULT_MAX_AUDIT_RETRY_MS. */
export const DEFAULT_AUDIT_RETRY_MS = 1000;
export const DEFAULT_MAX_AUDIT_RETRY_MS = 30_000;

export interface AuditLogOptions {
  deniedPerWindow?: number;
  deniedWindowMs?: number;
  maxQueuedBytes?: number;
  retryMs?: number;
  maxRetryMs?: number;
}

/** Denied commands of one socket in the current window. */
interface DeniedWindow {
  monitor: string;
  since: Date;
  written: number;
  folded: number;
  clients: Set<number>;
  timer: NodeJS.Timeout;
}

/** Distinct client ids remembered per window for the fold line; the count stops growing past it. */
const MAX_FOLDED_CLIENT_IDS = 1024;

/** An audit file's sink, which can also be opened again at its path. */
export interface AuditLog extends AuditSink {
  /** Later lines go to the file now at the path (created if it was moved away); none is lost. */
  reopen(): Promise<void>;
}

/**
 * Opens (appending to, mode 0600) an NDJSON audit file. Never throws: a
 * file that cannot be opened or written is logged and retried.
 */
export function openAuditLog(path: string, recordsArguments: boolean, logger: Logger, options: AuditLogOptions = {}): AuditLog {
  const deniedPerWindow = options.deniedPerWindow ?? DEFAULT_DENIED_PER_WINDOW;
  const deniedWindowMs = options.deniedWindowMs ?? DEFAULT_DENIED_WINDOW_MS;
  const file = new AuditFile({
    path,
    logger,
    maxQueuedBytes: options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_AUDIT_BYTES,
    retryMs: options.retryMs ?? DEFAULT_AUDIT_RETRY_MS,
    maxRetryMs: options.maxRetryMs ?? DEFAULT_MAX_AUDIT_RETRY_MS,
    gapLine: (lost, since, error) => {
      let line = `{"time":${timeJson()},"outcome":"audit-gap","lost":${lost},"since":${JSON.stringify(since.toISOString())}`;
      if (error !== undefined) line += `,"error":${JSON.stringify(error)}`;
      return `${line}}\n`;
    },
  });
  const deniedBySocket = new Map<string, DeniedWindow>();

  const endWindow = (socket: string): void => {
    const window = deniedBySocket.get(socket);
    if (window === undefined) return;
    clearTimeout(window.timer);
    deniedBySocket.delete(socket);
    if (window.folded === 0) return;
    file.append(
      `{"time":${timeJson()},"monitor":${JSON.stringify(window.monitor)},"socket":${JSON.stringify(socket)},"outcome":"denied","folded":${window.folded},"clients":${window.clients.size},"since":${JSON.stringify(window.since.toISOString())}}\n`,
    );
  };

  /** False when a denied entry is folded instead of written. */
  const admitDenied = (entry: AuditRecord): boolean => {
    let window = deniedBySocket.get(entry.socket);
    if (window === undefined) {
      const timer = setTimeout(() => endWindow(entry.socket), deniedWindowMs);
      timer.unref();
      window = { monitor: entry.monitor, since: new Date(), written: 0, folded: 0, clients: new Set(), timer };
      deniedBySocket.set(entry.socket, window);
    }
    if (window.written < deniedPerWindow) {
      window.written++;
      return true;
    }
    window.folded++;
    if (window.clients.size < MAX_FOLDED_CLIENT_IDS) window.clients.add(entry.client);
    return false;
  };

  return {
    recordsArguments,
    record(entry: AuditRecord): void {
      if (entry.outcome === 'denied' && !admitDenied(entry)) return;
      file.append(auditLine(entry, recordsArguments));
    },
    reopen: () => file.reopenPath(),
    async close(): Promise<void> {
      for (const socket of [...deniedBySocket.keys()]) endWindow(socket);
      await file.close();
    },
  };
}

/** One record as its NDJSON line, every client-supplied field bounded. */
export function auditLine(entry: AuditRecord, recordsArguments: boolean): string {
  const cut: string[] = [];
  const bounded = (field: string, text: string, maxBytes: number): string => {
    const kept = cutToBytes(text, maxBytes);
    if (kept !== undefined) cut.push(`${JSON.stringify(field)}:${Buffer.byteLength(text)}`);
    return kept ?? text;
  };
  let line = `{"time":${timeJson()},"monitor":${JSON.stringify(entry.monitor)},"socket":${JSON.stringify(entry.socket)},"client":${entry.client},"command":${JSON.stringify(bounded('command', entry.command, MAX_AUDIT_NAME_BYTES))},"outcome":"${entry.outcome}"`;
  if (entry.errorClass !== undefined) line += `,"errorClass":${JSON.stringify(bounded('errorClass', entry.errorClass, MAX_AUDIT_NAME_BYTES))}`;
  if (entry.origin !== undefined) line += `,"origin":"${entry.origin}"`;
  if (entry.procedure !== undefined) line += `,"procedure":${JSON.stringify(bounded('procedure', entry.procedure, MAX_AUDIT_NAME_BYTES))}`;
  if (entry.line !== undefined) line += `,"line":${JSON.stringify(bounded('line', entry.line, MAX_AUDIT_ARGUMENTS_BYTES))}`;
  if (entry.replyTo !== undefined) line += `,"replyTo":${JSON.stringify(bounded('replyTo', entry.replyTo, MAX_AUDIT_NAME_BYTES))}`;
  if (entry.requester !== undefined) line += `,"requester":${JSON.stringify(bounded('requester', entry.requester, MAX_AUDIT_NAME_BYTES))}`;
  if (recordsArguments && entry.argumentsJson !== undefined) {
    const kept = bounded('arguments', entry.argumentsJson, MAX_AUDIT_ARGUMENTS_BYTES);
    line += `,"arguments":${kept === entry.argumentsJson ? kept : JSON.stringify(kept)}`;
  }
  if (cut.length > 0) line += `,"cut":{${cut.join(',')}}`;
  return `${line}}\n`;
}

/**
 * The longest prefix of `text` of at most `maxBytes` UTF-8 bytes that ends
 * on a character boundary, or undefined when `text` fits whole. Looks at
 * no more than `maxBytes` characters, whatever the length of `text`.
 */
function cutToBytes(text: string, maxBytes: number): string | undefined {
  if (text.length <= maxBytes / 3) return undefined;
  const head = Buffer.from(text.slice(0, maxBytes + 1));
  if (head.length <= maxBytes && text.length <= maxBytes) return undefined;
  let end = Math.min(maxBytes, head.length);
  // Back off continuation bytes (10xxxxxx) so the cut falls between characters.
  while (end > 0 && end < head.length && (head[end]! & 0xc0) === 0x80) end--;
  return head.subarray(0, end).toString('utf8');
}

function timeJson(): string {
  return JSON.stringify(new Date().toISOString());
}
