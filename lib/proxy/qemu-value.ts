/**
 * QEMU's JSON values as QEMU sees them: parsing a token group with QEMU's
 * parser rules and error texts (qobject/json-parser.c), and writing values
 * back out two ways.
 *
 * - `toWireJson`: standard compact JSON for the upstream, with every number
 *   token exactly as the client wrote it (docs/design.md invariant 5): QEMU then
 *   parses the same tokens it would have parsed from the client.
 * - `toQemuJson`: what QEMU itself would print for the value (an `id` it
 *   echoes): `", "` and `": "` separators, dict members in QEMU's hash-table
 *   order, ASCII-only strings with upper-case `\uXXXX`, integers normalised
 *   and out-of-range numbers printed as doubles with `%.17g` (docs/monitor-facts.md §2:
 *   `1e3` → `1000`, `{"a":[1]}` → `{"a": [1]}`).
 *
 * Strings are decoded from QEMU's modified UTF-8 and validated as its parser
 * does, single-quoted strings and `\'` included.
 */
import { qdictOrder } from '../passthrough/qemu-input.js';
import { quoteLikeQemu } from '../passthrough/reply.js';
import { TokenType, type TokenGroup } from './qemu-lexer.js';

export type QValue =
  | { kind: 'object'; members: Map<string, QValue> }
  | { kind: 'array'; items: QValue[] }
  | { kind: 'string'; value: string }
  | { kind: 'number'; token: string; float: boolean }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'null' };

export type ParseResult = { ok: true; value: QValue } | { ok: false; desc: string };

class ParseFailure extends Error {}

/** Parses one token group as json_parser_parse() does; the first error wins, as in QEMU. */
export function parseTokenGroup(group: TokenGroup): ParseResult {
  const parser = new TokenParser(group);
  try {
    return { ok: true, value: parser.value() };
  } catch (error) {
    if (error instanceof ParseFailure) return { ok: false, desc: `JSON parse error, ${error.message}` };
    throw error;
  }
}

class TokenParser {
  private index = 0;

  constructor(private readonly group: TokenGroup) {}

  value(): QValue {
    const type = this.group.types[this.index];
    switch (type) {
      case undefined:
        throw new ParseFailure('premature EOI');
      case TokenType.LeftCurly:
        return this.object();
      case TokenType.LeftSquare:
        return this.array();
      case TokenType.String:
        return { kind: 'string', value: parseString(this.group.text(this.index++)) };
      case TokenType.Integer:
      case TokenType.Float:
        return { kind: 'number', token: this.group.text(this.index++), float: type === TokenType.Float };
      case TokenType.Keyword: {
        const word = this.group.text(this.index++);
        if (word === 'true' || word === 'false') return { kind: 'boolean', value: word === 'true' };
        if (word === 'null') return { kind: 'null' };
        throw new ParseFailure(`invalid keyword '${word}'`);
      }
      default:
        throw new ParseFailure('expecting value');
    }
  }

  private pop(): TokenType {
    const type = this.group.types[this.index];
    if (type === undefined) throw new ParseFailure('premature EOI');
    this.index++;
    return type;
  }

  private object(): QValue {
    this.index++; // '{'
    const members = new Map<string, QValue>();
    const first = this.group.types[this.index];
    if (first === undefined) throw new ParseFailure('premature EOI');
    if (first === TokenType.RightCurly) {
      this.index++;
      return { kind: 'object', members };
    }
    this.pair(members);
    for (let type = this.pop(); type !== TokenType.RightCurly; type = this.pop()) {
      if (type !== TokenType.Comma) throw new ParseFailure('expected separator in dict');
      this.pair(members);
    }
    return { kind: 'object', members };
  }

  private pair(members: Map<string, QValue>): void {
    if (this.group.types[this.index] === undefined) throw new ParseFailure('premature EOI');
    const key = this.value();
    if (key.kind !== 'string') throw new ParseFailure('key is not a string in object');
    if (this.pop() !== TokenType.Colon) throw new ParseFailure('missing : in object pair');
    const value = this.value();
    if (members.has(key.value)) throw new ParseFailure('duplicate key');
    members.set(key.value, value);
  }

  private array(): QValue {
    this.index++; // '['
    const items: QValue[] = [];
    const first = this.group.types[this.index];
    if (first === undefined) throw new ParseFailure('premature EOI');
    if (first === TokenType.RightSquare) {
      this.index++;
      return { kind: 'array', items };
    }
    items.push(this.value());
    for (let type = this.pop(); type !== TokenType.RightSquare; type = this.pop()) {
      if (type !== TokenType.Comma) throw new ParseFailure('expected separator in list');
      items.push(this.value());
    }
    return { kind: 'array', items };
  }
}

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

const PLAIN_STRING_TOKEN = /^.[\x20-\x26\x28-\x5b\x5d-\x7e]*.$/;

/** The value of a string token of plain ASCII without escapes (the usual name or key); undefined for any other. */
export function plainStringValue(token: string): string | undefined {
  return PLAIN_STRING_TOKEN.test(token) ? token.slice(1, -1) : undefined;
}

/** Decodes a string token (latin1 bytes, quotes included) as parse_string() does. */
function parseString(token: string): string {
  const plain = plainStringValue(token);
  if (plain !== undefined) return plain;
  let out = '';
  let i = 1;
  const end = token.length - 1;
  while (i < end) {
    const c = token.charCodeAt(i);
    if (c === 0x5c) {
      const begin = i;
      const escape = token[i + 1]!;
      i += 2;
      const simple = SIMPLE_ESCAPES[escape];
      if (simple !== undefined) {
        out += simple;
        continue;
      }
      if (escape !== 'u') throw new ParseFailure('invalid escape sequence in string');
      let codePoint = hex4(token, i);
      i += 4;
      if (codePoint >= 0xd800 && codePoint <= 0xdbff && token[i] === '\\' && token[i + 1] === 'u') {
        const trailing = hex4(token, i + 2);
        if (trailing >= 0xdc00 && trailing <= 0xdfff) {
          codePoint = 0x10000 + ((codePoint & 0x3ff) << 10) + (trailing & 0x3ff);
          i += 6;
        } else {
          codePoint = -1;
        }
      }
      if (!isValidCodePoint(codePoint)) {
        // QEMU prints i - begin bytes from the backslash, stopping at the end of the token text.
        throw new ParseFailure(`${token.slice(begin, Math.min(i, token.length))} is not a valid Unicode character`);
      }
      out += String.fromCodePoint(codePoint);
      continue;
    }
    const decoded = modifiedUtf8CodePoint(token, i, end);
    if (decoded.codePoint < 0) throw new ParseFailure('invalid UTF-8 sequence in string');
    out += String.fromCodePoint(decoded.codePoint);
    i = decoded.next;
  }
  return out;
}

function hex4(text: string, at: number): number {
  let value = 0;
  for (let k = 0; k < 4; k++) {
    const char = text[at + k] ?? '';
    if (!/^[0-9a-fA-F]$/.test(char)) return -1;
    value = value * 16 + parseInt(char, 16);
  }
  return value;
}

/** is_valid_codepoint(): no surrogates, no noncharacters, within Unicode. */
function isValidCodePoint(codePoint: number): boolean {
  if (codePoint < 0 || codePoint > 0x10ffff) return false;
  if ((codePoint >= 0xfdd0 && codePoint <= 0xfdef) || (codePoint & 0xfffe) === 0xfffe) return false;
  return !(codePoint >= 0xd800 && codePoint <= 0xdfff);
}

const MIN_CODE_POINT = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/**
 * mod_utf8_codepoint(): one code point from latin1 bytes at `at` (reading no
 * further than `limit`); -1 for anything QEMU rejects. `\xC0\x80` is NUL.
 */
export function modifiedUtf8CodePoint(bytes: string, at: number, limit: number): { codePoint: number; next: number } {
  const first = bytes.charCodeAt(at);
  if (first < 0x80) return { codePoint: first, next: at + 1 };
  if (first >= 0xfe || (first & 0x40) === 0) return { codePoint: -1, next: at + 1 };
  let length = 0;
  let mask = 0x80;
  for (; first & mask; mask >>= 1) length++;
  let codePoint = first & (mask - 1);
  let next = at + 1;
  for (let k = 1; k < length; k++) {
    const byte = next < limit ? bytes.charCodeAt(next) : 0;
    if ((byte & 0xc0) !== 0x80) return { codePoint: -1, next };
    next++;
    codePoint = codePoint * 64 + (byte & 0x3f);
  }
  if (codePoint > 0x10ffff) return { codePoint: -1, next };
  if ((codePoint >= 0xfdd0 && codePoint <= 0xfdef) || (codePoint & 0xfffe) === 0xfffe) return { codePoint: -1, next };
  if (codePoint >= 0xd800 && codePoint <= 0xdfff) return { codePoint: -1, next };
  if (codePoint < MIN_CODE_POINT[length - 2]! && !(codePoint === 0 && length === 2)) return { codePoint: -1, next };
  return { codePoint, next };
}

// ---- writing ------------------------------------------------------------------------------------

/** Compact standard JSON; number tokens verbatim, so QEMU reads the same numbers. */
export function toWireJson(value: QValue): string {
  switch (value.kind) {
    case 'object': {
      let out = '{';
      let first = true;
      for (const [key, member] of value.members) {
        out += `${first ? '' : ','}${JSON.stringify(key)}:${toWireJson(member)}`;
        first = false;
      }
      return `${out}}`;
    }
    case 'array':
      return `[${value.items.map(toWireJson).join(',')}]`;
    case 'string':
      return JSON.stringify(value.value);
    case 'number':
      return value.token;
    case 'boolean':
      return value.value ? 'true' : 'false';
    case 'null':
      return 'null';
  }
}

/** What QEMU prints for this value (qobject_to_json, compact). */
export function toQemuJson(value: QValue): string {
  switch (value.kind) {
    case 'object': {
      const members = qdictOrder([...value.members].map(([key, member]) => ({ key, member })));
      return `{${members.map(({ key, member }) => `${quoteLikeQemu(key)}: ${toQemuJson(member)}`).join(', ')}}`;
    }
    case 'array':
      return `[${value.items.map(toQemuJson).join(', ')}]`;
    case 'string':
      return quoteLikeQemu(value.value);
    case 'number':
      return qemuNumber(value.token, value.float);
    case 'boolean':
      return value.value ? 'true' : 'false';
    case 'null':
      return 'null';
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** How QEMU re-prints a number token: int64 or uint64 as integers, everything else as a double. */
function qemuNumber(token: string, float: boolean): string {
  if (!float) {
    const integer = BigInt(token);
    if (integer >= INT64_MIN && integer <= INT64_MAX) return integer.toString();
    if (!token.startsWith('-') && integer <= UINT64_MAX) return integer.toString();
  }
  return formatDouble(Number(token));
}

/** C's `%.17g`, which QEMU uses for doubles (and `inf`, which is not JSON, as QEMU writes it). */
export function formatDouble(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mantissa, exponentText] = x.toExponential(16).split('e') as [string, string];
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 17) {
    const digits = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
    return `${digits}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  const fixed = x.toFixed(16 - exponent);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/**
 * A C string of raw bytes (latin1) as QEMU's output formatter reads it:
 * decoded with mod_utf8_codepoint(), invalid sequences as U+FFFD, cut at
 * NUL. For error texts that quote what the client sent.
 */
export function decodeBytesLikeQemu(bytes: string): string {
  const nul = bytes.indexOf('\0');
  const limit = nul === -1 ? bytes.length : nul;
  let text = '';
  for (let i = 0; i < limit; ) {
    const { codePoint, next } = modifiedUtf8CodePoint(bytes, i, limit);
    text += String.fromCodePoint(codePoint < 0 ? 0xfffd : codePoint);
    i = next;
  }
  return text;
}
