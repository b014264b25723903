/**
 * The tokens of QEMU's JSON lexer (qobject/json-lexer.c) and a group of them
 * as its streamer hands it to the parser.
 */

export const enum TokenType {
  LeftCurly = 1,
  RightCurly,
  LeftSquare,
  RightSquare,
  Colon,
  Comma,
  Integer,
  Float,
  Keyword,
  String,
}

/** What a JSON value is; `literal` is true, false or null. */
export type JsonValueKind = 'object' | 'array' | 'string' | 'number' | 'literal';

/** One group of tokens the streamer hands to the parser. */
export interface TokenGroup {
  /** One type per token; reading past the end gives undefined, as an array would. */
  readonly types: ArrayLike<TokenType>;
  /** The text of token `index` (latin1: one char per byte). */
  text(index: number): string;
}

/** Every token text of a group, in order (for diagnostics and tests; a large group makes many strings). */
export function tokenTexts(group: TokenGroup): string[] {
  const texts: string[] = [];
  for (let index = 0; index < group.types.length; index++) texts.push(group.text(index));
  return texts;
}

/** The whitespace JSON and QEMU's lexer skip between tokens. */
export function isJsonSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** Index just past the string literal that opens at `start` (escapes skipped, not checked), or -1 when it does not end. */
export function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x5c) i++;
    else if (code === 0x22) return i + 1;
  }
  return -1;
}
