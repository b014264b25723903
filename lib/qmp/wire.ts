/**
 * The shapes QEMU's QMP server and the guest agent send (docs/monitor-facts.md §2, §4),
 * validated with ajv. Members QEMU may add later are allowed through: the
 * QMP specification tells clients to ignore what they do not know.
 */
import { ProtocolError } from '../errors.js';
import { precompiledSchema } from '../schema.js';
import { losslessFromParsed, parseJsonLossless } from './json.js';
import { readQemuOutput } from '../qemu-json/output-reader.js';
import { validateErrorReply, validateEvent, validateGreeting, validateReply } from './wire-validators.js';

export interface QmpVersion {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

export interface QmpGreeting {
  QMP: { version: QmpVersion; capabilities: string[] };
}

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: QmpTimestamp;
}

export interface QmpReturn {
  return: unknown;
  id?: unknown;
}

export interface QmpErrorReply {
  error: { class: string; desc: string };
  id?: unknown;
}

/** One message from the peer, classified, with its exact text. */
export type WireMessage =
  | { kind: 'greeting'; text: string; message: QmpGreeting }
  | { kind: 'event'; text: string; message: QmpEvent }
  | { kind: 'return'; text: string; message: QmpReturn }
  | { kind: 'error'; text: string; message: QmpErrorReply };

export const isGreeting = precompiledSchema<QmpGreeting>(validateGreeting);
export const isEvent = precompiledSchema<QmpEvent>(validateEvent);
export const isReturn = precompiledSchema<QmpReturn>(validateReply);
export const isErrorReply = precompiledSchema<QmpErrorReply>(validateErrorReply);

export type ClassifyResult = WireMessage | { kind: 'invalid'; text: string; reason: string };

/**
 * Classifies a parsed object by its distinguishing member, then validates the
 * shape. Never throws.
 */
export function classify(text: string, value: unknown): ClassifyResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'invalid', text, reason: 'not a JSON object' };
  }
  if ('event' in value) {
    return isEvent(value) ? { kind: 'event', text, message: value } : invalid(text, 'event', isEvent.explain());
  }
  if ('return' in value) {
    return isReturn(value) ? { kind: 'return', text, message: value } : invalid(text, 'reply', isReturn.explain());
  }
  if ('error' in value) {
    return isErrorReply(value) ? { kind: 'error', text, message: value } : invalid(text, 'error reply', isErrorReply.explain());
  }
  if ('QMP' in value) {
    return isGreeting(value) ? { kind: 'greeting', text, message: value } : invalid(text, 'greeting', isGreeting.explain());
  }
  return { kind: 'invalid', text, reason: 'not a greeting, reply, error or event' };
}

function invalid(text: string, what: string, why: string): ClassifyResult {
  return { kind: 'invalid', text, reason: `malformed ${what}: ${why}` };
}

/**
 * The value of one message QEMU sent, numbers kept exact (`parsed`: its
 * JSON.parse value, when the framer already made it). What JSON refuses is
 * read again as QEMU's output, where `inf`, `-inf`, `nan` and `-nan` are
 * the doubles QEMU printed (lib/qemu-json/output-reader.ts). Throws ProtocolError when the
 * text is neither.
 */
export function parseMonitorJson(text: string, parsed?: object): unknown {
  try {
    return parsed === undefined ? parseJsonLossless(text) : losslessFromParsed(text, parsed);
  } catch (error) {
    try {
      return readQemuOutput(text);
    } catch {
      throw new ProtocolError(`unparseable JSON from the monitor: ${(error as Error).message}`, text);
    }
  }
}

/** How QEMU begins a success reply that carries no id, in compact output. */
export const RETURN_PREFIX = '{"return": ';

/**
 * A reply kept as QEMU's text until its value is asked for: a proxy relays
 * the text and never needs the value. Reading `message` parses it, and
 * throws ProtocolError if it is not a well-formed success reply (a message
 * QEMU wrote that no reader makes sense of still answers its request: this
 * is how it reaches the requester). `wireId` is the numeric id read from
 * the text when the value could not be.
 */
export class UnparsedReturn {
  readonly kind = 'return' as const;
  private parsed: QmpReturn | undefined;

  constructor(
    readonly text: string,
    readonly wireId?: number,
  ) {}

  get message(): QmpReturn {
    if (this.parsed === undefined) {
      const value = parseMonitorJson(this.text);
      if (!isReturn(value)) throw new ProtocolError(`malformed reply: ${isReturn.explain()}`, this.text);
      this.parsed = value;
    }
    return this.parsed;
  }
}

/** The id QEMU echoed in a reply (qmpx's wire id, when the command carried one), without parsing an unparsed reply. */
export function echoedId(reply: { readonly message: { readonly id?: unknown } }): unknown {
  return reply instanceof UnparsedReturn ? reply.wireId : reply.message.id;
}

/** Letters, digits, '_' and '-' (every QAPI command name): nothing to escape. */
function isPlainCommandName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    const plain =
      (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39) || code === 0x5f || code === 0x2d;
    if (!plain) return false;
  }
  return true;
}

/** How many command names keep their argument-less in-band text (QEMU has a few hundred commands). */
const KEPT_TEXTS = 512;
/** The wire text of in-band commands without arguments or id, by name: most calls repeat a few. */
const plainCommandTexts = new Map<string, string>();

/**
 * Builds the wire text of a command; the name is JSON-escaped, the arguments
 * already JSON. QEMU's parser needs no line end, but one command per line
 * keeps wire traces and line-oriented peers readable.
 */
export function wireCommand(command: string, argumentsJson: string | undefined, oob: boolean, wireId?: number): string {
  const plain = argumentsJson === undefined && !oob && wireId === undefined;
  if (plain) {
    const kept = plainCommandTexts.get(command);
    if (kept !== undefined) return kept;
  }
  let text = `{"${oob ? 'exec-oob' : 'execute'}":${isPlainCommandName(command) ? `"${command}"` : JSON.stringify(command)}`;
  if (argumentsJson !== undefined) text += `,"arguments":${argumentsJson}`;
  if (wireId !== undefined) text += `,"id":${wireId}`;
  text += '}\n';
  if (plain && plainCommandTexts.size < KEPT_TEXTS) plainCommandTexts.set(command, text);
  return text;
}
