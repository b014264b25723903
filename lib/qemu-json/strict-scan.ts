/**
 * Reads a pass-through caller's text the way QEMU's JSON reader would, so
 * that qmpx can answer locally everything QEMU would refuse before running
 * a command, and never write such input upstream.
 *
 * The text must be strict RFC 8259 JSON (the caller's contract is libvirt's,
 * whose JSON parser refuses QEMU's single-quoted strings); the proxy's
 * streamer.ts reads QEMU's whole dialect from bytes. Both take QEMU's
 * limits and their order from limits.ts and its string rules from
 * unicode.ts. One pass, no recursion (a hostile depth cannot overflow the
 * stack). It reports:
 * - a syntax error with its position (the caller gets `cannot parse JSON`);
 * - otherwise what QEMU would complain about first, measured against
 *   QEMU 7.2 with a raw socket:
 *   1. its stream limits, checked token by token as the tokens arrive and
 *      before any parsing: more than 1,024 nested `{`/`[`, a token count
 *      above 2^21, token bytes (whitespace excluded) reaching 64 MiB. QEMU
 *      answers such input with that error and then many more id-less errors
 *      for the rest of the text, which is why it must never be sent;
 *   2. then its parser, in document order: a string QEMU will not decode
 *      (a `\u` escape of a surrogate or non-character:
 *      `\ud800 is not a valid Unicode character`, the escape quoted as
 *      written; an unescaped one: `invalid UTF-8 sequence in string`), and a
 *      duplicate key (detected after the member's value is read);
 * - the top-level value's kind and, for an object, its members in
 *   document order with the raw text span of each value.
 */
import type { InputMember } from './dispatch-check.js';
import { countOrNestingError, MAX_TOKEN_BYTES, TOKEN_SIZE_EXCEEDED } from './limits.js';
import { jsonNumberEnd } from './numbers.js';
import { isJsonSpace, type JsonValueKind } from './tokens.js';
import { hex4, isValidCodePoint, readUnicodeEscape } from './unicode.js';

/** A member of the top-level object; its key decoded. */
export interface TopLevelMember extends InputMember {
  /** Where the key's opening quote is. */
  readonly keyStart: number;
  /** The value's raw text is `text.slice(start, end)`. */
  readonly start: number;
  readonly end: number;
}

/** Valid JSON, and what QEMU would make of it. */
export interface ScannedJson {
  readonly ok: true;
  readonly kind: JsonValueKind;
  /** Members of the top-level object in document order; [] for other kinds. */
  readonly members: readonly TopLevelMember[];
  /** QEMU's first complaint before dispatch (`JSON parse error, duplicate key`, ...), or null. */
  readonly qemuError: string | null;
  /** Tokens and their bytes as QEMU's lexer counts them. */
  readonly tokenCount: number;
  readonly tokenBytes: number;
}

/** Not JSON: why, and where. */
export interface JsonSyntaxFailure {
  readonly ok: false;
  readonly reason: string;
  /** Where the problem is, in UTF-16 code units from 0. */
  readonly position: number;
}

/** The outcome of `scanJson`, told apart by `ok`. */
export type ScanResult = ScannedJson | JsonSyntaxFailure;

class SyntaxFailure {
  constructor(
    readonly reason: string,
    readonly position: number,
  ) {}
}

interface ObjectFrame {
  readonly kind: 'object';
  readonly start: number;
  readonly keys: Set<string>;
  key: string;
  keyStart: number;
}

interface ArrayFrame {
  readonly kind: 'array';
  readonly start: number;
}

/** What the scanner expects next. */
const enum Expect {
  Value,
  ValueOrArrayEnd,
  KeyOrObjectEnd,
  Key,
  Colon,
  CommaOrObjectEnd,
  CommaOrArrayEnd,
  End,
}

const SHORT_ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);

/** Scans `text`; never throws. */
export function scanJson(text: string): ScanResult {
  try {
    return new Scanner(text).run();
  } catch (error) {
    if (error instanceof SyntaxFailure) return { ok: false, reason: error.reason, position: error.position };
    throw error;
  }
}

class Scanner {
  private position = 0;
  private readonly stack: (ObjectFrame | ArrayFrame)[] = [];
  private readonly members: TopLevelMember[] = [];
  private topKind: JsonValueKind = 'literal';
  private tokenCount = 0;
  private tokenBytes = 0;
  private streamerError: string | null = null;
  private parserError: string | null = null;

  constructor(private readonly text: string) {}

  run(): ScannedJson {
    let expect = Expect.Value;
    for (;;) {
      this.skipWhitespace();
      if (expect === Expect.End) {
        if (this.position < this.text.length) this.fail('Expected end of input');
        return {
          ok: true,
          kind: this.topKind,
          members: this.members,
          qemuError: this.streamerError ?? this.parserError,
          tokenCount: this.tokenCount,
          tokenBytes: this.tokenBytes,
        };
      }
      const char = this.text[this.position];
      switch (expect) {
        case Expect.ValueOrArrayEnd:
        case Expect.CommaOrArrayEnd:
          if (char === ']') {
            expect = this.closeContainer();
            continue;
          }
          if (expect === Expect.CommaOrArrayEnd) {
            if (char !== ',') this.fail("Comma ',' or end of array ']' expected");
            this.punctuation();
            expect = Expect.Value;
            continue;
          }
          expect = this.value();
          continue;
        case Expect.Value:
          expect = this.value();
          continue;
        case Expect.KeyOrObjectEnd:
        case Expect.Key:
          if (char === '}' && expect === Expect.KeyOrObjectEnd) {
            expect = this.closeContainer();
            continue;
          }
          if (char !== '"') this.fail('Quoted object key expected');
          this.key();
          expect = Expect.Colon;
          continue;
        case Expect.Colon:
          if (char !== ':') this.fail("Colon ':' expected after property name");
          this.punctuation();
          expect = Expect.Value;
          continue;
        case Expect.CommaOrObjectEnd:
          if (char === '}') {
            expect = this.closeContainer();
            continue;
          }
          if (char !== ',') this.fail("Comma ',' or end of object '}' expected");
          this.punctuation();
          expect = Expect.Key;
          continue;
      }
    }
  }

  /** Reads a member's key into the innermost object's frame. */
  private key(): void {
    const frame = this.stack[this.stack.length - 1] as ObjectFrame;
    frame.keyStart = this.position;
    frame.key = this.decode(this.string());
  }

  /** Reads one value, or opens a container; returns what comes next. */
  private value(): Expect {
    const start = this.position;
    const char = this.text[start];
    if (char === '{' || char === '[') {
      this.position++;
      if (char === '{') this.stack.push({ kind: 'object', start, keys: new Set(), key: '', keyStart: -1 });
      else this.stack.push({ kind: 'array', start });
      this.token(1);
      return char === '{' ? Expect.KeyOrObjectEnd : Expect.ValueOrArrayEnd;
    }
    let kind: JsonValueKind;
    if (char === '"') {
      kind = 'string';
      this.string();
    } else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) {
      kind = 'number';
      const end = jsonNumberEnd(this.text, start);
      if (end === -1) {
        this.position = start + 1;
        this.fail('Digit expected');
      }
      this.position = end;
      this.token(this.position - start);
    } else {
      const literal = ['true', 'false', 'null'].find((word) => this.text.startsWith(word, start));
      if (literal === undefined) this.fail('JSON value expected');
      kind = 'literal';
      this.position += literal!.length;
      this.token(literal!.length);
    }
    return this.completeValue(kind, start, this.position);
  }

  private closeContainer(): Expect {
    const frame = this.stack.pop()!;
    this.position++;
    this.token(1, this.stack.length + 1);
    return this.completeValue(frame.kind, frame.start, this.position);
  }

  /** A value has ended at `end`: record it and say what may follow. */
  private completeValue(kind: JsonValueKind, start: number, end: number): Expect {
    const parent = this.stack[this.stack.length - 1];
    if (parent === undefined) {
      this.topKind = kind;
      return Expect.End;
    }
    if (parent.kind === 'array') return Expect.CommaOrArrayEnd;
    // QEMU's parse_pair checks for a duplicate only after reading the value.
    if (parent.keys.has(parent.key)) this.parserError ??= 'JSON parse error, duplicate key';
    else parent.keys.add(parent.key);
    if (this.stack.length === 1) {
      const stringValue = kind === 'string' ? this.decode([start, end]) : undefined;
      const member = { key: parent.key, keyStart: parent.keyStart, kind, start, end };
      this.members.push(stringValue === undefined ? member : { ...member, stringValue });
    }
    return Expect.CommaOrObjectEnd;
  }

  /** Reads a string token at the current position; returns its raw span. */
  private string(): [number, number] {
    const text = this.text;
    const start = this.position;
    let index = start + 1;
    for (;;) {
      if (index >= text.length) {
        this.position = index;
        this.fail("End of string '\"' expected");
      }
      const code = text.charCodeAt(index);
      if (code === 0x22) break;
      if (code === 0x5c) {
        index = this.escape(index);
        continue;
      }
      if (code < 0x20) {
        this.position = index;
        this.fail('String character expected');
      }
      if (code >= 0xd800 && code <= 0xdbff) {
        const next = text.charCodeAt(index + 1);
        if (next >= 0xdc00 && next <= 0xdfff) {
          const codePoint = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
          if (!isValidCodePoint(codePoint)) this.parserError ??= 'JSON parse error, invalid UTF-8 sequence in string';
          index += 2;
          continue;
        }
      }
      if (!isValidCodePoint(code)) this.parserError ??= 'JSON parse error, invalid UTF-8 sequence in string';
      index++;
    }
    this.position = index + 1;
    this.token(Buffer.byteLength(text.slice(start, this.position)));
    return [start, this.position];
  }

  /**
   * Reads the escape at `backslash`; returns the index after it. A `\u`
   * escape is read as QEMU's parser reads it (unicode.ts), after the check
   * that it is JSON.
   */
  private escape(backslash: number): number {
    const text = this.text;
    const kind = text[backslash + 1];
    if (kind !== 'u') {
      if (kind === undefined || !SHORT_ESCAPES.has(kind)) {
        this.position = backslash + 1;
        this.fail('Escape character expected');
      }
      return backslash + 2;
    }
    if (hex4(text, backslash + 2) < 0) {
      this.position = backslash + 2;
      this.fail('Four hex digits expected');
    }
    const { codePoint, end } = readUnicodeEscape(text, backslash);
    if (codePoint < 0) this.parserError ??= `JSON parse error, ${text.slice(backslash, end)} is not a valid Unicode character`;
    return end;
  }

  private decode([start, end]: [number, number]): string {
    return JSON.parse(this.text.slice(start, end)) as string;
  }

  private punctuation(): void {
    this.position++;
    this.token(1);
  }

  /**
   * Counts one token as QEMU's json-streamer does: nesting first (for a
   * closing token, `depthBefore` is the depth it closes), then size, count
   * and depth checks in QEMU's order.
   */
  private token(bytes: number, depthBefore?: number): void {
    const depth = depthBefore === undefined ? this.stack.length : depthBefore - 1;
    if (this.streamerError === null) {
      if (this.tokenBytes + bytes + 1 > MAX_TOKEN_BYTES) this.streamerError = TOKEN_SIZE_EXCEEDED;
      else this.streamerError = countOrNestingError(this.tokenCount, depth);
    }
    this.tokenBytes += bytes;
    this.tokenCount++;
  }

  private skipWhitespace(): void {
    const text = this.text;
    let index = this.position;
    while (isJsonSpace(text.charCodeAt(index))) index++;
    this.position = index;
  }

  private fail(what: string): never {
    const char = this.text[this.position];
    const got = char === undefined ? 'reached end of input' : `got ${describeChar(this.text.codePointAt(this.position)!)}`;
    throw new SyntaxFailure(`${what} but ${got}`, this.position);
  }
}

function describeChar(codePoint: number): string {
  if (codePoint < 0x20 || codePoint === 0x7f) return `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
  return `'${String.fromCodePoint(codePoint)}'`;
}
