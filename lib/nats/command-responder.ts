/**
 * Request-reply on `qmpx.<host>.<vm>.cmd.<command>` (full policy) and
 * `qmpx.<host>.<vm>.ro.<command>` (the read-only policy of the VM's
 * sockets): one request, one reply.
 *
 * The request body is a QMP command object (`{"execute":"query-status"}`),
 * or with the header `Qmpx-Format: hmp` a human-monitor command line, which
 * is the command `human-monitor-command`. The command in the body must be
 * the subject's. It runs through the pass-through (`monitorCommand`), as
 * libvirt's monitor-command calls do: the monitor is tainted, the command
 * shares the one ordered queue with every other caller, and the reply body
 * is QEMU's reply text (with the caller's `id`), or the HMP output.
 *
 * What qmpx answers itself carries the header `Qmpx-Error: <code>` and a
 * QMP error reply as body (`{"error": {"class": "GenericError", "desc": ...}}`,
 * with the request's `id` when it had one):
 *
 *   invalid         the body is not a QMP command QEMU would run (not JSON,
 *                   no `execute`, ...), or Qmpx-Format is neither qmp nor hmp
 *   mismatch        the body's command is not the subject's
 *   refused         the subject class's policy refuses the command
 *   monitor-down    the VM's monitor is not connected: nothing was sent
 *   outcome-unknown the command was sent but no reply came (the monitor went
 *                   away, or serve is stopping): QEMU may have run it
 *   failed          anything else qmpx could not do (the message says what)
 *
 * A QMP error of QEMU's own (`CommandNotFound`, ...) is QEMU's reply, not
 * one of these: it has no Qmpx-Error header.
 */
import { headers as natsHeaders, type Msg } from '@nats-io/transport-node';
import type { AuditOutcome, AuditRecord, AuditSink } from '../audit-sink.js';
import { AbortError, ConnectionClosedError, InvalidArgumentError, TimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import { MonitorCommandFlags, monitorCommand } from '../passthrough/index.js';
import { judgeInput } from '../qemu-json/dispatch-check.js';
import { parseTokenGroup, type QValue } from '../qemu-json/parser.js';
import { errorReplyText } from '../qemu-json/replies.js';
import { scanJson } from '../qemu-json/strict-scan.js';
import { QemuJsonStreamer } from '../qemu-json/streamer.js';
import type { FleetVm } from './fleet-vm.js';
import { parseSubject } from './subjects.js';

export const ERROR_HEADER = 'Qmpx-Error';
export const FORMAT_HEADER = 'Qmpx-Format';
/** A requester may name itself here; recorded in the audit log as it says (NATS does not vouch for it). */
export const REQUESTER_HEADER = 'Qmpx-Requester';
export const HMP_COMMAND = 'human-monitor-command';

export type CommandErrorCode = 'invalid' | 'mismatch' | 'refused' | 'monitor-down' | 'outcome-unknown' | 'failed';

/** The audit outcome of each error reply. */
const AUDIT_OUTCOMES: Record<CommandErrorCode, AuditOutcome> = {
  invalid: 'error',
  mismatch: 'denied',
  refused: 'denied',
  'monitor-down': 'lost',
  'outcome-unknown': 'lost',
  failed: 'error',
};

/** Bytes of a body recorded as the command when the body names none. */
const MAX_UNNAMED_COMMAND_BYTES = 64;

export interface CommandResponderOptions {
  host: string;
  audit: AuditSink;
  logger: Logger;
  /** Fired when serve stops: commands still waiting for QEMU are given up (outcome-unknown). */
  signal: AbortSignal;
}

/** Answers one request `msg` for `vm`. Never throws: every failure becomes an error reply. */
export function answerCommand(vm: FleetVm, msg: Msg, options: CommandResponderOptions): void {
  const parsed = parseSubject(msg.subject);
  if (parsed === null || parsed.kind === 'evt') return; // the subscriptions only match cmd and ro subjects
  const subjectCommand = parsed.name;
  const body = msg.string();
  const record: AuditRecord = {
    monitor: vm.name,
    socket: msg.subject,
    client: 0,
    command: subjectCommand,
    outcome: 'ok',
    origin: 'nats',
  };
  const requester = msg.headers?.get(REQUESTER_HEADER);
  if (requester) record.requester = requester;
  if (msg.reply) record.replyTo = msg.reply;
  const fail = (code: CommandErrorCode, desc: string, idJson?: string): void => {
    record.outcome = AUDIT_OUTCOMES[code];
    record.errorClass = code;
    options.audit.record(record);
    const headers = natsHeaders();
    headers.set(ERROR_HEADER, code);
    msg.respond(errorReplyText({ errorClass: 'GenericError', desc, idJson }), { headers });
  };

  const format = msg.headers?.get(FORMAT_HEADER) || 'qmp';
  if (format !== 'qmp' && format !== 'hmp') return fail('invalid', `${FORMAT_HEADER} must be qmp or hmp, not ${JSON.stringify(format)}`);
  const policy = parsed.kind === 'cmd' ? vm.policies.cmd : vm.policies.ro;
  const link = vm.upstream.current;

  let flags = 0;
  let idJson: string | undefined;
  let args: QValue | undefined;
  if (format === 'hmp') {
    flags = MonitorCommandFlags.HMP;
    record.line = options.audit.recordsArguments ? body : (body.trim().split(/\s+/)[0] ?? '');
    if (subjectCommand !== HMP_COMMAND) return fail('mismatch', `an HMP line goes on the subject of '${HMP_COMMAND}', not '${subjectCommand}'`);
    args = { kind: 'object', members: new Map([['command-line', { kind: 'string', value: body }]]) };
  } else {
    const scanned = scanJson(body);
    if (!scanned.ok) return fail('invalid', `cannot parse JSON: ${scanned.reason} at position ${scanned.position}`);
    const verdict = judgeInput(scanned, link?.monitor.capabilities.includes('oob') ?? false);
    idJson = verdict.idMember === undefined ? undefined : body.slice(verdict.idMember.start, verdict.idMember.end);
    if (verdict.kind === 'refused') return fail('invalid', verdict.desc, idJson);
    if (verdict.name !== subjectCommand) {
      record.command = verdict.name.slice(0, MAX_UNNAMED_COMMAND_BYTES);
      return fail('mismatch', `the body runs '${verdict.name}' but the subject names '${subjectCommand}'`, idJson);
    }
    const argumentsText = verdict.argumentsMember === undefined ? undefined : body.slice(verdict.argumentsMember.start, verdict.argumentsMember.end);
    if (argumentsText !== undefined) {
      if (options.audit.recordsArguments) record.argumentsJson = argumentsText;
      args = qemuValueOf(argumentsText);
      if (args === undefined) return fail('invalid', 'the arguments do not parse', idJson);
    }
  }
  const refusal = policy.refusal(subjectCommand, args);
  if (refusal !== undefined) return fail('refused', refusal.replace(/ of this socket$/, ` of ${parsed.kind === 'cmd' ? '.cmd.' : '.ro.'} subjects`), idJson);
  if (link === undefined) return fail('monitor-down', `the monitor of ${JSON.stringify(vm.name)} is not connected; nothing was sent`, idJson);

  // Called without awaiting first: requests reach QEMU in the order NATS delivered them.
  const settled = vm.watch?.callSent(subjectCommand);
  monitorCommand(link.monitor, body, flags, { signal: options.signal }).then(
    (reply) => {
      settled?.(true);
      if (flags === 0 && reply.includes('"error": {')) {
        record.outcome = 'error';
        record.errorClass = /"class": "([^"]*)"/.exec(reply)?.[1] ?? 'GenericError';
      }
      options.audit.record(record);
      msg.respond(reply);
    },
    (error: unknown) => {
      settled?.(false);
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof ConnectionClosedError || error instanceof TimeoutError || error instanceof AbortError) {
        fail('outcome-unknown', `no reply from QEMU (${message}): the command may or may not have run`, idJson);
      } else if (error instanceof InvalidArgumentError) {
        fail('invalid', message, idJson);
      } else {
        options.logger.warn({ monitor: vm.name, subject: msg.subject, err: message }, 'NATS command failed');
        fail('failed', message, idJson);
      }
    },
  );
}

/** The arguments as QEMU's parser reads them (QEMU's JSON: single quotes too), for the policies; undefined if they do not parse. */
function qemuValueOf(text: string): QValue | undefined {
  let value: QValue | undefined;
  const streamer = new QemuJsonStreamer({
    group: (tokens) => {
      const parsed = parseTokenGroup(tokens);
      if (parsed.ok) value ??= parsed.value;
    },
    error: () => undefined,
    oversize: () => undefined,
  });
  streamer.push(Buffer.from(text, 'utf8'));
  streamer.close();
  return value;
}
