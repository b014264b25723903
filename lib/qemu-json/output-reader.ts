/**
 * QEMU's output read as QEMU meant it, where JSON.parse gives up.
 *
 * QEMU's JSON writer prints a double with printf "%.17g", so a non-finite
 * one comes out as `inf`, `-inf`, `nan` or `-nan`: bare tokens no JSON
 * parser accepts. Such a message is still one reply (or event) of QEMU's,
 * and it must be delivered as one, or every later reply would answer the
 * wrong request. This reader is for the rare messages JSON.parse refused:
 * JSON plus those four tokens, read as Infinity, -Infinity and NaN;
 * integers beyond ±2^53 become `bigint`, by the rule of numbers.ts that the
 * lossless JSON reader applies too.
 */
import { MAX_OUTPUT_NESTING } from './limits.js';
import { jsonNumberEnd, numberFromToken } from './numbers.js';
import { isJsonSpace, stringEnd } from './tokens.js';

const NON_FINITE: ReadonlyMap<string, number> = new Map([
  ['inf', Infinity],
  ['-inf', -Infinity],
  ['nan', NaN],
  ['-nan', NaN],
]);

const NON_FINITE_TOKEN = /-?(?:inf|nan)/y;

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
    NON_FINITE_TOKEN.lastIndex = this.at;
    const nonFinite = NON_FINITE_TOKEN.exec(this.text);
    if (nonFinite !== null) {
      this.at += nonFinite[0].length;
      return NON_FINITE.get(nonFinite[0])!;
    }
    const end = jsonNumberEnd(this.text, this.at);
    if (end === -1) return this.fail('a value expected');
    const token = this.text.slice(this.at, end);
    this.at = end;
    return numberFromToken(token);
  }

  private skipSpace(): void {
    while (this.at < this.text.length && isJsonSpace(this.text.charCodeAt(this.at))) this.at++;
  }

  private fail(what: string): never {
    throw new SyntaxError(`${what} at position ${this.at}`);
  }
}

/**
 * `text` read as JSON in which `inf`, `-inf`, `nan` and `-nan` are numbers
 * (Infinity, -Infinity, NaN, NaN). Throws SyntaxError, with the position,
 * for anything else that is not JSON.
 */
export function readQemuOutput(text: string): unknown {
  return new OutputReader(text).read();
}
