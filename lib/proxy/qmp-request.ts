/**
 * A downstream client's parsed input judged as QEMU's dispatcher judges it
 * (qapi/qmp-dispatch.c, monitor/qmp.c, monitor/qmp-cmds-control.c), and the
 * reply texts QEMU would write.
 *
 * Order of checks, as in QEMU: not an object → `QMP input must be a JSON
 * object` (no id); then the members, visited in QDict order → the first bad
 * one is reported, with the id; then, before negotiation, every command but
 * `qmp_capabilities` gets CommandNotFound `Expecting capabilities
 * negotiation with 'qmp_capabilities'`.
 */
import type { TopLevelMember } from '../passthrough/json-scan.js';
import { judgeInput, qdictOrder } from '../passthrough/qemu-input.js';
import { quoteLikeQemu, withCallerId } from '../passthrough/reply.js';
import { TokenType, type TokenGroup } from './qemu-lexer.js';
import { plainStringValue, toQemuJson, toWireJson, type QValue } from './qemu-value.js';

/** A well-formed command, ready to forward. */
export interface ClientCommand {
  command: string;
  /** Sent as `exec-oob` (it had `exec-oob` and no `execute`, and OOB is enabled). */
  oob: boolean;
  /** The arguments object for the upstream, number tokens as the client wrote them. */
  argumentsJson: string | undefined;
  arguments: QValue | undefined;
  /** The id as QEMU would echo it, or undefined when the command had none. */
  idJson: string | undefined;
}

/** A reply decided locally, with QEMU's class and text. */
export interface LocalError {
  errorClass: string;
  desc: string;
  idJson: string | undefined;
}

export type CheckedRequest = { ok: true; command: ClientCommand } | ({ ok: false } & LocalError);

/**
 * qmp_dispatch_check_obj() and the lookup of the command name, by the
 * pass-through's judge (the same rules for callers and downstream clients).
 * `allowOob` is whether this client enabled OOB: without it `exec-oob` is an
 * unexpected member.
 */
export function checkRequest(value: QValue, allowOob: boolean): CheckedRequest {
  const plain = plainCommand(value);
  if (plain !== undefined) return { ok: true, command: plain };
  const members: TopLevelMember[] =
    value.kind === 'object'
      ? [...value.members].map(([key, member]) => ({
          key,
          keyStart: 0,
          start: 0,
          end: 0,
          kind: member.kind === 'boolean' || member.kind === 'null' ? 'literal' : member.kind,
          stringValue: member.kind === 'string' ? member.value : undefined,
        }))
      : [];
  const kind = value.kind === 'boolean' || value.kind === 'null' ? 'literal' : value.kind;
  const verdict = judgeInput({ ok: true, kind, members, qemuError: null, tokenCount: 0, tokenBytes: 0 }, allowOob);
  const memberValue = (member: TopLevelMember | undefined): QValue | undefined =>
    member === undefined || value.kind !== 'object' ? undefined : value.members.get(member.key);
  const id = memberValue(verdict.idMember);
  const idJson = id === undefined ? undefined : toQemuJson(id);
  if (verdict.kind === 'refused') return { ok: false, errorClass: 'GenericError', desc: verdict.desc, idJson };
  const args = memberValue(verdict.argumentsMember);
  return {
    ok: true,
    command: {
      command: verdict.name,
      oob: verdict.oob,
      arguments: args,
      argumentsJson: args === undefined ? undefined : toWireJson(args),
      idJson,
    },
  };
}

/**
 * The usual input, `execute` (a string) with at most `arguments` (an
 * object) and `id`, has no member QEMU could refuse in any order: it needs
 * no judging. Undefined for anything else.
 */
function plainCommand(value: QValue): ClientCommand | undefined {
  if (value.kind !== 'object') return undefined;
  let name: string | undefined;
  let args: QValue | undefined;
  let id: QValue | undefined;
  for (const [key, member] of value.members) {
    if (key === 'execute' && member.kind === 'string') name = member.value;
    else if (key === 'arguments' && member.kind === 'object') args = member;
    else if (key === 'id') id = member;
    else return undefined;
  }
  if (name === undefined) return undefined;
  return {
    command: name,
    oob: false,
    arguments: args,
    argumentsJson: args === undefined ? undefined : toWireJson(args),
    idJson: id === undefined ? undefined : toQemuJson(id),
  };
}

/**
 * The commonest input, `{"execute": NAME}` with at most a one-token `id`,
 * read straight off its tokens: the command parseTokenGroup() and
 * checkRequest() would make of it, without building the value (most of the
 * per-command cost of a client's input). Undefined for anything else,
 * which takes the full path: a repeated key, an escape, `arguments`.
 */
export function plainTokenCommand(group: TokenGroup): ClientCommand | undefined {
  const { types } = group;
  const count = types.length;
  if ((count !== 5 && count !== 9) || types[0] !== TokenType.LeftCurly || types[count - 1] !== TokenType.RightCurly) return undefined;
  let name: string | undefined;
  let idJson: string | undefined;
  let hasId = false;
  for (let at = 1; at < count; at += 4) {
    if (types[at] !== TokenType.String || types[at + 1] !== TokenType.Colon) return undefined;
    if (at + 4 < count && types[at + 3] !== TokenType.Comma) return undefined;
    const key = plainStringValue(group.text(at));
    if (key === 'execute' && name === undefined) {
      if (types[at + 2] !== TokenType.String) return undefined;
      name = plainStringValue(group.text(at + 2));
      if (name === undefined) return undefined;
    } else if (key === 'id' && !hasId) {
      idJson = scalarIdJson(types[at + 2]!, group.text(at + 2));
      if (idJson === undefined) return undefined;
      hasId = true;
    } else {
      return undefined;
    }
  }
  if (name === undefined) return undefined;
  return { command: name, oob: false, arguments: undefined, argumentsJson: undefined, idJson };
}

/** A one-token id as QEMU echoes it; undefined when only the full parser can tell. */
function scalarIdJson(type: TokenType, text: string): string | undefined {
  switch (type) {
    case TokenType.Integer:
    case TokenType.Float:
      return toQemuJson({ kind: 'number', token: text, float: type === TokenType.Float });
    case TokenType.String: {
      const value = plainStringValue(text);
      return value === undefined ? undefined : toQemuJson({ kind: 'string', value });
    }
    case TokenType.Keyword:
      return text === 'true' || text === 'false' || text === 'null' ? text : undefined;
    default:
      return undefined;
  }
}

/** The error every command but qmp_capabilities gets before negotiation. */
export function beforeNegotiation(command: ClientCommand): LocalError {
  return { errorClass: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'", idJson: command.idJson };
}

/**
 * Runs `qmp_capabilities` before negotiation: its arguments are visited as
 * QAPI visits `{ '*enable': ['QMPCapability'] }`, then the requested
 * capabilities must all be offered. Returns the capabilities to enable, or
 * QEMU's error.
 */
export function negotiate(command: ClientCommand, offered: readonly string[]): { ok: true; enabled: string[] } | ({ ok: false } & LocalError) {
  const fail = (desc: string): { ok: false } & LocalError => ({ ok: false, errorClass: 'GenericError', desc, idJson: command.idJson });
  const args = command.arguments;
  const enabled: string[] = [];
  if (args !== undefined && args.kind === 'object') {
    const enable = args.members.get('enable');
    if (enable !== undefined) {
      if (enable.kind !== 'array') return fail("Invalid parameter type for 'enable', expected: array");
      for (const [index, item] of enable.items.entries()) {
        if (item.kind !== 'string') return fail(`Invalid parameter type for 'enable[${index}]', expected: string`);
        // QMPCapability has one member in QEMU 7.2; list elements have no name, printed as 'null' (docs/monitor-facts.md §2).
        if (item.value !== 'oob') return fail(`Parameter 'null' does not accept value '${item.value}'`);
        if (!enabled.includes(item.value)) enabled.push(item.value);
      }
    }
    const unexpected = qdictOrder([...args.members.keys()].map((key) => ({ key }))).find(({ key }) => key !== 'enable');
    if (unexpected !== undefined) return fail(`Parameter '${unexpected.key}' is unexpected`);
  }
  const unavailable = enabled.filter((capability) => !offered.includes(capability));
  if (unavailable.length > 0) return fail(`Capability ${unavailable.join(', ')} not available`);
  return { ok: true, enabled };
}

/** QEMU's error reply text, without the line end: the id first (docs/monitor-facts.md §2). */
export function errorReplyText(error: LocalError): string {
  const body = `"error": {"class": ${quoteLikeQemu(error.errorClass)}, "desc": ${quoteLikeQemu(error.desc)}}`;
  return error.idJson === undefined ? `{${body}}` : `{"id": ${error.idJson}, ${body}}`;
}

/** QEMU's success reply text for `{}`, with the id last. */
export function emptyReturnText(idJson: string | undefined): string {
  return idJson === undefined ? '{"return": {}}' : `{"return": {}, "id": ${idJson}}`;
}

/** QEMU's compact output begins `{"`; a `pretty=on` monitor puts a line break after the brace. */
function isCompact(replyText: string): boolean {
  return replyText.charCodeAt(1) === 0x22;
}

/**
 * An id-less reply from QEMU with the client's id put where QEMU puts it:
 * last in a return, first in an error, with the monitor's own separators
 * (a `pretty=on` monitor's line breaks and indent). The rest is QEMU's text
 * untouched.
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
