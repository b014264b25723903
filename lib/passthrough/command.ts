/**
 * `monitorCommand`: libvirt's `virDomainQemuMonitorCommand` on a qmpx
 * monitor, sharing its one ordered queue with the library's own commands.
 *
 *   cmd (QMP text) ──scan──▶ not JSON?          reject InvalidArgumentError `cannot parse JSON: … at position N`
 *                     │      QEMU would refuse? resolve QEMU's error text, computed here, nothing sent
 *                     ▼
 *              re-serialised (lossless-json: number tokens as written), id removed
 *                     ▼
 *              mon's queue (origin: passthrough) ──▶ QEMU's reply text, caller's id restored
 *
 * Only JSON qmpx serialised itself is ever written (docs/design.md invariant 3):
 * input QEMU would answer with zero or several replies (nesting, token
 * limits) or refuse outright is answered locally with the first reply QEMU
 * would have given, so no caller can desynchronise the shared connection.
 */
import { InvalidArgumentError, QmpError, UnsupportedError } from '../errors.js';
import type { Monitor, RawRequestOptions } from '../contract.js';
import type { RequestOrigin } from '../request.js';
import { parseJsonLossless } from '../qmp/json.js';
import { checkFlags, MonitorCommandFlags } from './flags.js';
import { judgeInput } from '../qemu-json/dispatch-check.js';
import { withCallerId } from '../qemu-json/id-placement.js';
import { MAX_TOKEN_BYTES, MAX_TOKEN_COUNT, TOKEN_COUNT_EXCEEDED, TOKEN_SIZE_EXCEEDED } from '../qemu-json/limits.js';
import { formatLikeQemu } from '../qemu-json/print.js';
import { errorReplyText, returnReplyText } from '../qemu-json/replies.js';
import { scanJson, type ScannedJson, type TopLevelMember } from '../qemu-json/strict-scan.js';
import { wireJsonFromText } from '../qemu-json/wire.js';
import { markTainted } from './taint.js';

/** Per-call options: a qmpx extension to libvirt's signature. */
export interface MonitorCommandOptions {
  /** Settle with TimeoutError after this many ms (default: the monitor's commandTimeoutMs). */
  timeoutMs?: number;
  /** Settle with AbortError when this fires; other requests are unaffected. */
  signal?: AbortSignal;
  /**
   * File descriptors sent with the command, as libvirt's
   * `virDomainQemuMonitorCommandWithFiles` does: only with `getfd` and
   * `add-fd` (or an HMP `getfd` line on a human-monitor socket), on a
   * monitor connected with `fdPassing`. They stay the caller's.
   */
  fds?: readonly number[];
}

const PASSTHROUGH_ORIGIN: RequestOrigin = { kind: 'passthrough' };

/** `,` `"id"` `:` N, and their bytes with the largest id qmpx uses (16 digits). */
const WIRE_ID_TOKENS = 4;
const WIRE_ID_BYTES = 6 + 16;

/**
 * Sends `cmd` to the monitor and resolves with the monitor's reply text.
 *
 * Without flags `cmd` is a QMP command (any whitespace and key order), e.g.
 * `{"execute":"query-status","id":"a1"}`:
 * - resolves with QEMU's reply text as QEMU sent it (no trailing CRLF),
 *   success or QMP error alike, with the caller's `id` restored byte for
 *   byte where QEMU puts ids (`{"return": …, "id": ID}`,
 *   `{"id": ID, "error": …}`), and no id if the caller gave none;
 * - resolves with QEMU's exact error text, computed locally, for JSON that
 *   QEMU would refuse before running anything (`[1,2]`, `{}`, `exec-oob`
 *   without OOB, a duplicate key, an unexpected member, …);
 * - rejects with InvalidArgumentError `cannot parse JSON: <reason> at
 *   position N` when `cmd` is not JSON.
 * With `MonitorCommandFlags.HMP`, `cmd` is a human-monitor command line:
 * resolves with its output as QEMU returns it (CRLF line ends), on a QMP
 * monitor through `human-monitor-command`, on an HMP monitor as typed.
 * A QMP command on an HMP monitor runs only if it is one HMP can answer
 * (see lib/hmp/commands.ts); otherwise UnsupportedError.
 *
 * Every call with supported flags and a string taints the monitor, even if
 * it then fails (isTainted), as libvirt taints before looking at the text.
 * `options` (a qmpx extension) give this call its own deadline or abort
 * signal. Rejects with UnsupportedError (`unsupported flags (0x…)`, a
 * command the monitor cannot run), TimeoutError, AbortError or
 * ConnectionClosedError.
 */
export async function monitorCommand(mon: Monitor, cmd: string, flags = 0, options: MonitorCommandOptions = {}): Promise<string> {
  checkFlags(flags, MonitorCommandFlags.HMP);
  if (typeof cmd !== 'string') throw new InvalidArgumentError(`the command must be a string, got ${typeof cmd}`);
  markTainted(mon);
  const requestOptions: RawRequestOptions = { ...options, origin: PASSTHROUGH_ORIGIN };
  if ((flags & MonitorCommandFlags.HMP) !== 0) return humanMonitorCommand(mon, cmd, requestOptions);

  const scanned = scanJson(cmd);
  if (!scanned.ok) {
    throw new InvalidArgumentError(`cannot parse JSON: ${scanned.reason} at position ${scanned.position}`, scanned.position);
  }
  const verdict = judgeInput(scanned, mon.capabilities.includes('oob'));
  const idText = textOf(cmd, verdict.idMember);
  if (verdict.kind === 'refused') return errorReplyText({ errorClass: 'GenericError', desc: verdict.desc, idJson: idText });
  const overLimit = wireLimitError(scanned);
  if (overLimit !== null) return errorReplyText({ errorClass: 'GenericError', desc: overLimit });

  const argumentsText = textOf(cmd, verdict.argumentsMember);
  const raw = mon.raw;
  if (raw !== null) {
    const argumentsJson = argumentsText === undefined ? undefined : wireJsonFromText(argumentsText);
    const reply = await raw.send(verdict.name, argumentsJson, { ...requestOptions, oob: verdict.oob });
    return withCallerId(reply.text, reply.message.id !== undefined, idText);
  }
  // No raw channel (the human monitor): the command runs through execute()
  // and its value or QmpError is written as QEMU would have.
  const args = argumentsText === undefined ? undefined : (parseJsonLossless(argumentsText) as object);
  try {
    const value = await mon.execute(verdict.name, args, verdict.oob ? { ...requestOptions, oob: true } : requestOptions);
    return returnReplyText(formatLikeQemu(value), idText);
  } catch (error) {
    if (error instanceof QmpError) return errorReplyText({ errorClass: error.errorClass, desc: error.desc, idJson: idText });
    throw error;
  }
}

async function humanMonitorCommand(mon: Monitor, commandLine: string, options: RawRequestOptions): Promise<string> {
  if (mon.protocol === 'qga') throw new UnsupportedError(`${commandLine}: the guest agent has no human monitor`);
  // execute(), not hmp(): hmp() turns CRLF into LF, pass-through hands back QEMU's text.
  return mon.execute<string>('human-monitor-command', { 'command-line': commandLine }, options);
}

/**
 * What qmpx writes is never longer than the caller's text without its
 * whitespace (ids dropped, escapes decoded), except for the `,"id":N` qmpx
 * adds to exec-oob commands (and to all with `wireIds`): at most 4 tokens
 * and 22 bytes. A command that close to QEMU's stream limits is refused as
 * QEMU would refuse the longer text, since QEMU answers an over-limit
 * message with many id-less errors that would desynchronise the connection.
 */
function wireLimitError(scanned: ScannedJson): string | null {
  if (scanned.tokenBytes + WIRE_ID_BYTES + 1 > MAX_TOKEN_BYTES) return TOKEN_SIZE_EXCEEDED;
  if (scanned.tokenCount + WIRE_ID_TOKENS > MAX_TOKEN_COUNT) return TOKEN_COUNT_EXCEEDED;
  return null;
}

function textOf(text: string, member: TopLevelMember | undefined): string | undefined {
  return member === undefined ? undefined : text.slice(member.start, member.end);
}
