/**
 * A client's id put into a reply QEMU wrote, where QEMU itself would have
 * put it (docs/monitor-facts.md §2). QEMU's text is kept; only the id
 * changes. qmpx sends in-band commands without an id, so the client's id is
 * inserted; for `exec-oob` QEMU echoed qmpx's numeric wire id, which is
 * replaced by the client's id, or removed with its separator when the
 * client gave none.
 *
 * A reply is a QDict printed in QDict order (qdict-order.ts), which puts
 * `id` after `return` and before `error`, with the monitor's separators:
 * `", "` and `": "` compact, `,` + line end + 4 spaces on a `pretty=on`
 * monitor.
 */
import { ProtocolError } from '../errors.js';
import { scanTopLevelMembers, type OutputMember } from './output-members.js';
import { qdictOrder } from './qdict-order.js';

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

/** QEMU's compact output begins `{"`; a `pretty=on` monitor puts a line break after the brace. */
function isCompact(replyText: string): boolean {
  return replyText.charCodeAt(1) === 0x22;
}

/**
 * An id-less reply from QEMU with the client's id (`idJson`, as QEMU would
 * echo it) put where QEMU puts it: last in a return, first in an error,
 * with the monitor's own separators (a `pretty=on` monitor's line breaks
 * and indent). The rest is QEMU's text untouched.
 */
export function attachId(replyText: string, isError: boolean, idJson: string | undefined): string {
  if (idJson === undefined) return replyText;
  if (!isCompact(replyText)) {
    const placed = placeId(replyText, false, idJson);
    if (placed !== undefined) return placed;
  }
  if (isError) return `{"id": ${idJson}, ${replyText.slice(replyText.indexOf('{') + 1).trimStart()}`;
  return `${replyText.slice(0, replyText.lastIndexOf('}')).trimEnd()}, "id": ${idJson}}`;
}

/**
 * A reply that echoes qmpx's wire id (exec-oob), with the client's id in
 * its place, or without it (and its separator) when the client gave none.
 * Compact output has it at a known place: `, "id": N}` at the end of a
 * return, `{"id": N, ` at the start of an error; anywhere else (a
 * `pretty=on` monitor) the member is found by the text's structure.
 */
export function replaceWireId(replyText: string, isError: boolean, wireId: number, idJson: string | undefined): string {
  const wire = String(wireId);
  if (isError) {
    const prefix = `{"id": ${wire}, `;
    if (replyText.startsWith(prefix)) return attachId(`{${replyText.slice(prefix.length)}`, true, idJson);
  } else {
    const suffix = `, "id": ${wire}}`;
    if (replyText.endsWith(suffix)) return attachId(`${replyText.slice(0, -suffix.length)}}`, false, idJson);
  }
  return placeId(replyText, true, idJson) ?? replyText;
}

/** withCallerId(), or undefined when the text has no members to place an id among (it then goes as QEMU wrote it). */
function placeId(replyText: string, wireIdEchoed: boolean, idJson: string | undefined): string | undefined {
  try {
    return withCallerId(replyText, wireIdEchoed, idJson === undefined ? undefined : indentedLikeReply(idJson, replyText));
  } catch {
    return undefined;
  }
}

/**
 * An id that is an object or array, laid out as a `pretty=on` monitor lays
 * out a top-level member's value: each member or item on its own line,
 * indented 4 spaces per level, the closing bracket on a line of its own at
 * the level of the opening one (also when empty). `idJson` is QEMU's
 * compact form; scalars and compact replies are left alone.
 */
function indentedLikeReply(idJson: string, replyText: string): string {
  const first = idJson.charCodeAt(0);
  if ((first !== 0x7b && first !== 0x5b) || isCompact(replyText)) return idJson;
  const lineEnd = replyText.charCodeAt(1) === 0x0d ? '\r\n' : '\n';
  const newline = (depth: number): string => lineEnd + ' '.repeat(4 * depth);
  let out = '';
  let depth = 1;
  for (let i = 0; i < idJson.length; i++) {
    const char = idJson[i]!;
    if (char === '"') {
      const start = i;
      for (i++; i < idJson.length && idJson[i] !== '"'; i++) if (idJson[i] === '\\') i++;
      out += idJson.slice(start, i + 1);
    } else if (char === '{' || char === '[') {
      depth++;
      out += char + newline(depth);
    } else if (char === '}' || char === ']') {
      depth--;
      out = out.trimEnd() + newline(depth) + char;
    } else if (char === ',') {
      out += `,${newline(depth)}`;
    } else if (char === ':') {
      out += ': ';
    } else if (char !== ' ') {
      out += char;
    }
  }
  return out;
}
