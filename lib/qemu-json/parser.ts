/**
 * QEMU's JSON values as its parser (qobject/json-parser.c) makes them from
 * a token group, with its rules and error texts: the first error wins,
 * strings are decoded from QEMU's modified UTF-8 and validated, single-quoted
 * strings and `\'` included, and number tokens are kept as written.
 */
import { TokenType, type TokenGroup } from './tokens.js';
import { modifiedUtf8CodePoint, readUnicodeEscape } from './unicode.js';

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
      const escape = token[i + 1]!;
      const simple = SIMPLE_ESCAPES[escape];
      if (simple !== undefined) {
        out += simple;
        i += 2;
        continue;
      }
      if (escape !== 'u') throw new ParseFailure('invalid escape sequence in string');
      const { codePoint, end: next } = readUnicodeEscape(token, i);
      // QEMU prints the escapes taken from the backslash on, stopping at the end of the token text.
      if (codePoint < 0) throw new ParseFailure(`${token.slice(i, Math.min(next, token.length))} is not a valid Unicode character`);
      out += String.fromCodePoint(codePoint);
      i = next;
      continue;
    }
    const decoded = modifiedUtf8CodePoint(token, i, end);
    if (decoded.codePoint < 0) throw new ParseFailure('invalid UTF-8 sequence in string');
    out += String.fromCodePoint(decoded.codePoint);
    i = decoded.next;
  }
  return out;
}
