/**
 * QEMU's output read as QEMU meant it, where JSON.parse gives up.
 *
 * QEMU's JSON writer prints a double with printf "%.17g", so a non-finite
 * one comes out as `inf`, `-inf`, `nan` or `-nan`: bare tokens no JSON
 * parser accepts. Such a message is still one reply (or event) of QEMU's,
 * and it must be delivered as one, or every later reply would answer the
 * wrong request. Two readers, both for the rare messages JSON.parse refused
 * (the common path never comes here):
 *
 * - readQemuOutput(): JSON plus those four tokens, read as Infinity,
 *   -Infinity and NaN; integers beyond ±2^53 become `bigint`, as in json.ts.
 * - scanTopLevelMembers(): the top-level object's keys and the text span of
 *   each value, whatever the values hold, so that a message can be told
 *   apart (event, reply, greeting; its id) even when its values are
 *   unreadable, and a reply's id can be put in QEMU's text.
 */

import { isInteger, isSafeNumber } from 'lossless-json';

/** QEMU never nests its output this deep; deeper text is refused, not recursed into. */
export const MAX_OUTPUT_NESTING = 1024;

const NON_FINITE: ReadonlyMap<string, number> = new Map([
  ['inf', Infinity],
  ['-inf', -Infinity],
  ['nan', NaN],
  ['-nan', NaN],
]);

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const NON_FINITE_TOKEN = /-?(?:inf|nan)/y;

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

class OutputReader {
  private at = 0;

  constructor(private readonly text: string) {}

  read(): unknown {
    const value = this.value(0);
    this.skipSpace();
    if (this.at !== this.text.length) this.fail('text after the value');
    return value;
  }

  private value(depth: number): unknown {
    this.skipSpace();
    const code = this.text.charCodeAt(this.at);
    if (code === 0x7b) return this.object(depth + 1);
    if (code === 0x5b) return this.array(depth + 1);
    if (code === 0x22) return this.string();
    for (const [word, literal] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return literal;
      }
    }
    return this.number();
  }

  private object(depth: number): Record<string, unknown> {
    if (depth > MAX_OUTPUT_NESTING) this.fail(`nesting deeper than ${MAX_OUTPUT_NESTING}`);
    this.at++;
    const result: Record<string, unknown> = {};
    this.skipSpace();
    if (this.text.charCodeAt(this.at) === 0x7d) {
      this.at++;
      return result;
    }
    for (;;) {
      this.skipSpace();
      if (this.text.charCodeAt(this.at) !== 0x22) this.fail('a key expected');
      const key = this.string();
      this.skipSpace();
      if (this.text.charCodeAt(this.at++) !== 0x3a) this.fail("':' expected");
      // defineProperty: a key `__proto__` is a member, as JSON.parse makes it, not the prototype.
      Object.defineProperty(result, key, { value: this.value(depth), enumerable: true, writable: true, configurable: true });
      if (this.endOf(0x7d)) return result;
    }
  }

  private array(depth: number): unknown[] {
    if (depth > MAX_OUTPUT_NESTING) this.fail(`nesting deeper than ${MAX_OUTPUT_NESTING}`);
    this.at++;
    const result: unknown[] = [];
    this.skipSpace();
    if (this.text.charCodeAt(this.at) === 0x5d) {
      this.at++;
      return result;
    }
    for (;;) {
      result.push(this.value(depth));
      if (this.endOf(0x5d)) return result;
    }
  }

  /** After a member or item: true at the closing bracket, false after a comma. */
  private endOf(close: number): boolean {
    this.skipSpace();
    const code = this.text.charCodeAt(this.at++);
    if (code === close) return true;
    if (code !== 0x2c) this.fail(`',' or '${String.fromCharCode(close)}' expected`);
    return false;
  }

  private string(): string {
    const end = stringEnd(this.text, this.at);
    if (end === -1) this.fail('unterminated string');
    const literal = this.text.slice(this.at, end);
    this.at = end;
    try {
      return JSON.parse(literal) as string;
    } catch (error) {
      return this.fail((error as Error).message);
    }
  }

  private number(): number | bigint {
    for (const pattern of [NON_FINITE_TOKEN, NUMBER]) {
      pattern.lastIndex = this.at;
      const match = pattern.exec(this.text);
      if (match === null) continue;
      this.at += match[0].length;
      const token = match[0];
      const nonFinite = NON_FINITE.get(token);
      if (nonFinite !== undefined) return nonFinite;
      // The rule json.ts applies, so both readers give the same value for the same token.
      return isInteger(token) && !isSafeNumber(token) ? BigInt(token) : Number(token);
    }
    return this.fail('a value expected');
  }

  private skipSpace(): void {
    while (this.at < this.text.length && isSpace(this.text.charCodeAt(this.at))) this.at++;
  }

  private fail(what: string): never {
    throw new SyntaxError(`${what} at position ${this.at}`);
  }
}

/** Index just past the string literal that opens at `start`, or -1 when it does not end. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x5c) i++;
    else if (code === 0x22) return i + 1;
  }
  return -1;
}

/**
 * `text` read as JSON in which `inf`, `-inf`, `nan` and `-nan` are numbers
 * (Infinity, -Infinity, NaN, NaN). Throws SyntaxError, with the position,
 * for anything else that is not JSON.
 */
export function readQemuOutput(text: string): unknown {
  return new OutputReader(text).read();
}

/** A member of a top-level object: its key and where its key and value are in the text. */
export interface OutputMember {
  readonly key: string;
  /** Where the key's opening quote is. */
  readonly keyStart: number;
  /** The value's text is `text.slice(start, end)`, without surrounding whitespace. */
  readonly start: number;
  readonly end: number;
}

/**
 * The members of the object `text` holds, in document order, with values
 * skipped over by bracket and string structure only (any token inside is
 * accepted). Null when the text is not `{ "key": value, ... }` at the top
 * level. Linear in the text's length.
 */
export function scanTopLevelMembers(text: string): OutputMember[] | null {
  const scan = scanMembers(text);
  return scan.complete ? scan.members : null;
}

/**
 * The members of the top-level object in `text` that can be read before the
 * first thing that is not `"key": value` (all of them in a well-formed
 * object): enough to tell what a broken message of QEMU's was meant to be.
 */
export function readableMembers(text: string): OutputMember[] {
  return scanMembers(text).members;
}

function scanMembers(text: string): { members: OutputMember[]; complete: boolean } {
  const members: OutputMember[] = [];
  const incomplete = { members, complete: false };
  let at = 0;
  const skipSpace = (): void => {
    while (at < text.length && isSpace(text.charCodeAt(at))) at++;
  };
  skipSpace();
  if (text.charCodeAt(at) !== 0x7b) return incomplete;
  at++;
  skipSpace();
  let closed = text.charCodeAt(at) === 0x7d;
  if (closed) at++;
  while (!closed) {
    skipSpace();
    const keyStart = at;
    const keyEnd = text.charCodeAt(at) === 0x22 ? stringEnd(text, at) : -1;
    if (keyEnd === -1) return incomplete;
    let key: string;
    try {
      key = JSON.parse(text.slice(keyStart, keyEnd)) as string;
    } catch {
      return incomplete;
    }
    at = keyEnd;
    skipSpace();
    if (text.charCodeAt(at++) !== 0x3a) return incomplete;
    skipSpace();
    const start = at;
    let depth = 0;
    for (; at < text.length; at++) {
      const code = text.charCodeAt(at);
      if (code === 0x22) {
        const end = stringEnd(text, at);
        if (end === -1) return incomplete;
        at = end - 1;
      } else if (code === 0x7b || code === 0x5b) {
        depth++;
      } else if (code === 0x7d || code === 0x5d) {
        if (depth === 0) break;
        depth--;
      } else if (code === 0x2c && depth === 0) {
        break;
      }
    }
    if (at >= text.length) return incomplete;
    let end = at;
    while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
    if (end === start) return incomplete;
    members.push({ key, keyStart, start, end });
    const code = text.charCodeAt(at++);
    if (code === 0x7d) closed = true;
    else if (code !== 0x2c) return incomplete;
  }
  skipSpace();
  return at === text.length ? { members, complete: true } : incomplete;
}
