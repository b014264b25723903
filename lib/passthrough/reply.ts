/**
 * Reply texts for pass-through callers, exactly as QEMU would have written
 * them had the caller's own text reached it (docs/monitor-facts.md §2):
 *
 * - QEMU's text is kept; only the id changes. qmpx sends in-band commands
 *   without an id, so the caller's id is inserted; for `exec-oob` (or
 *   `wireIds`) QEMU echoed qmpx's numeric wire id, which is replaced by the
 *   caller's id, or removed with its separator when the caller gave none.
 * - The caller's id goes in byte for byte as the caller wrote it (QEMU
 *   itself would re-serialise it: `1e3` → `1000`), at the place QEMU puts
 *   ids: its reply is a QDict printed in hash order, which puts `id` after
 *   `return` and before `error` (the same hash as qemu-input.ts), with
 *   QEMU's separators: `", "` and `": "` compact, `,` + newline + 4 spaces
 *   on a `pretty=on` monitor.
 * - Replies qmpx builds itself (refused input, HMP and guest-agent
 *   monitors) are formatted like QEMU: compact, `", "` / `": "`, pure
 *   ASCII with upper-case `\uXXXX` escapes.
 */
import { ProtocolError } from '../errors.js';
import { scanTopLevelMembers, type OutputMember } from '../qmp/qemu-output.js';
import { qdictOrder } from './qemu-input.js';

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** A string as QEMU's JSON writer quotes it (`to_json_str`): ASCII only, `/` not escaped. */
export function quoteLikeQemu(text: string): string {
  let quoted = '"';
  // Code units: a character beyond the BMP becomes its surrogate pair, as in QEMU.
  for (let index = 0; index < text.length; index++) {
    const char = text.charAt(index);
    const code = text.charCodeAt(index);
    const short = SHORT_ESCAPES[char];
    if (short !== undefined) quoted += short;
    else if (code < 0x20 || code >= 0x7f) quoted += `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
    else quoted += char;
  }
  return `${quoted}"`;
}

/**
 * A value as QEMU writes it, compact. `bigint` and lossless-json's
 * LosslessNumber are written as their integer / number tokens. Throws
 * TypeError for what JSON cannot hold.
 */
export function formatLikeQemu(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return String(value);
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} as JSON`);
      return JSON.stringify(value);
    case 'string':
      return quoteLikeQemu(value);
    case 'object':
      break;
    default:
      throw new TypeError(`cannot write a ${typeof value} as JSON`);
  }
  const token = value as { isLosslessNumber?: unknown; value?: unknown };
  if (token.isLosslessNumber === true && typeof token.value === 'string') return token.value;
  if (Array.isArray(value)) return `[${value.map(formatLikeQemu).join(', ')}]`;
  const members = Object.entries(value)
    .filter(([, member]) => member !== undefined)
    .map(([key, member]) => `${quoteLikeQemu(key)}: ${formatLikeQemu(member)}`);
  return `{${members.join(', ')}}`;
}

/** `{"error": {"class": C, "desc": D}}`, with the caller's id where QEMU puts it. */
export function errorReplyText(errorClass: string, desc: string, idText?: string): string {
  const text = `{"error": {"class": ${quoteLikeQemu(errorClass)}, "desc": ${quoteLikeQemu(desc)}}}`;
  return withCallerId(text, false, idText);
}

/** `{"return": V}` for V already JSON text, with the caller's id where QEMU puts it. */
export function returnReplyText(valueText: string, idText?: string): string {
  return withCallerId(`{"return": ${valueText}}`, false, idText);
}

/**
 * QEMU's reply `text` with the caller's id: inserted where QEMU puts an id,
 * or replacing the wire id QEMU echoed when `wireIdEchoed`; without any id
 * when `idText` is undefined. Throws ProtocolError when the text is not a
 * reply object (QEMU sent something qmpx cannot place an id in).
 */
export function withCallerId(text: string, wireIdEchoed: boolean, idText: string | undefined): string {
  if (idText === undefined && !wireIdEchoed) return text;
  // Members by structure only: QEMU's `inf` or `nan` in a value must not keep the id from its place.
  const members = scanTopLevelMembers(text);
  if (members === null || members.length === 0) {
    throw new ProtocolError('cannot place the caller id: the reply is not a JSON object with members', text.slice(0, 200));
  }
  const echoed = members.find((member) => member.key === 'id');
  if (wireIdEchoed) {
    if (echoed === undefined) throw new ProtocolError('the reply to a command sent with an id has no id', text.slice(0, 200));
    if (idText !== undefined) return text.slice(0, echoed.start) + idText + text.slice(echoed.end);
    return withoutMember(text, members, echoed);
  }
  // Between `{` and the first key: '' compact, newline + indent on a pretty monitor.
  const lead = text.slice(1, members[0]!.keyStart);
  const separator = lead === '' ? ', ' : `,${lead}`;
  const idMember = `"id": ${idText}`;
  if (idPrecedes(members)) {
    const at = members[0]!.keyStart;
    return text.slice(0, at) + idMember + separator + text.slice(at);
  }
  const at = members[members.length - 1]!.end;
  return text.slice(0, at) + separator + idMember + text.slice(at);
}

/** Whether QEMU's QDict order puts an `id` before the reply's members (`error`) or after them (`return`). */
function idPrecedes(members: readonly OutputMember[]): boolean {
  const order = qdictOrder([...members.map((member) => ({ key: member.key })), { key: 'id' }]);
  return order[0]!.key === 'id';
}

/** `text` without `member` and the separator that tied it to a neighbour. */
function withoutMember(text: string, members: readonly OutputMember[], member: OutputMember): string {
  const index = members.indexOf(member);
  if (index > 0) return text.slice(0, members[index - 1]!.end) + text.slice(member.end);
  const next = members[index + 1];
  if (next === undefined) return text.slice(0, member.keyStart) + text.slice(member.end);
  return text.slice(0, member.keyStart) + text.slice(next.keyStart);
}
