/**
 * A downstream client's parsed input judged as QEMU's dispatcher judges it
 * (qapi/qmp-dispatch.c, monitor/qmp.c, monitor/qmp-cmds-control.c); the
 * replies are written by lib/qemu-json (replies.ts, id-placement.ts).
 *
 * Order of checks, as in QEMU: not an object → `QMP input must be a JSON
 * object` (no id); then the members, visited in QDict order → the first bad
 * one is reported, with the id; then, before negotiation, every command but
 * `qmp_capabilities` gets CommandNotFound `Expecting capabilities
 * negotiation with 'qmp_capabilities'`.
 */
import { judgeInput, type InputMember } from '../qemu-json/dispatch-check.js';
import { plainStringValue, type QValue } from '../qemu-json/parser.js';
import { toQemuJson } from '../qemu-json/print.js';
import { qdictOrder } from '../qemu-json/qdict-order.js';
import type { ErrorReply } from '../qemu-json/replies.js';
import { TokenType, type JsonValueKind, type TokenGroup } from '../qemu-json/tokens.js';
import { toWireJson } from '../qemu-json/wire.js';
import type { UpstreamLink } from './upstream.js';

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
export interface LocalError extends ErrorReply {
  readonly idJson: string | undefined;
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
  const members: ValueMember[] =
    value.kind === 'object'
      ? [...value.members].map(([key, member]) => ({
          key,
          kind: valueKind(member),
          stringValue: member.kind === 'string' ? member.value : undefined,
          value: member,
        }))
      : [];
  const verdict = judgeInput({ kind: valueKind(value), members }, allowOob);
  const idJson = verdict.idMember === undefined ? undefined : toQemuJson(verdict.idMember.value);
  if (verdict.kind === 'refused') return { ok: false, errorClass: 'GenericError', desc: verdict.desc, idJson };
  const args = verdict.argumentsMember?.value;
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

/** A member of a parsed input object, with its value. */
interface ValueMember extends InputMember {
  readonly value: QValue;
}

function valueKind(value: QValue): JsonValueKind {
  return value.kind === 'boolean' || value.kind === 'null' ? 'literal' : value.kind;
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
 * checkRequest() would make of it, without building the value. Undefined
 * for anything else, which takes the full path: a repeated key, an escape,
 * `arguments`.
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

/**
 * The upstream's greeting bytes, with the capability list cut down to what
 * the upstream link negotiated (a client may enable only those).
 */
export function greetingFor(link: UpstreamLink): string {
  const qmp = link.qmp!;
  const text = qmp.greetingText ?? '';
  const offered = qmp.greeting?.QMP.capabilities ?? [];
  const usable = qmp.capabilities;
  if (offered.length === usable.length && offered.every((capability, index) => capability === usable[index])) return text;
  return text.replace(/"capabilities": \[[^\]]*\]/, `"capabilities": [${usable.map((capability) => JSON.stringify(capability)).join(', ')}]`);
}
