/**
 * Re-layout of JSON text without parsing it into values: only insignificant
 * whitespace changes, so every number token, string escape and key order
 * stays exactly as QEMU (or the caller) wrote it (docs/design.md invariant 5).
 * The CLI prints QEMU's replies this way: compact like virsh
 * (`{"return":{...}}`) or indented by two spaces like `virsh --pretty`.
 */

/** The input was not one JSON value. */
export class JsonTextError extends Error {
  override readonly name = 'JsonTextError';
}

/**
 * Throws JsonTextError unless `text` is exactly one JSON value (surrounding
 * whitespace allowed). JSON.parse checks the grammar; any rounding it does
 * to the values is irrelevant here because the values are thrown away.
 */
export function assertJson(text: string): void {
  try {
    JSON.parse(text);
  } catch (error) {
    throw new JsonTextError((error as Error).message);
  }
}

/** True when `text` is one JSON value whose top level is an object. */
export function isJsonObjectText(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** `text` (valid JSON) with all whitespace outside strings removed. */
export function compactJson(text: string): string {
  assertJson(text);
  let out = '';
  forEachToken(text, (token) => {
    out += token;
  });
  return out;
}

/**
 * `text` (valid JSON) laid out like `JSON.stringify(value, null, indent)`:
 * one member or element per line, `": "` after keys, empty containers as
 * `{}` and `[]`. No trailing newline.
 */
export function prettyJson(text: string, indent = 2): string {
  assertJson(text);
  const pad = ' '.repeat(indent);
  let out = '';
  let depth = 0;
  // An opener is written at once, but its line break waits: if the container turns out empty it is `{}`.
  let openerPending = false;
  forEachToken(text, (token) => {
    const first = token.charAt(0);
    if (first === '}' || first === ']') {
      depth--;
      if (openerPending) {
        out += token;
        openerPending = false;
        return;
      }
      out += '\n' + pad.repeat(depth) + token;
      return;
    }
    if (openerPending) {
      out += '\n' + pad.repeat(depth);
      openerPending = false;
    }
    if (first === '{' || first === '[') {
      out += token;
      depth++;
      openerPending = true;
    } else if (first === ',') {
      out += ',\n' + pad.repeat(depth);
    } else if (first === ':') {
      out += ': ';
    } else {
      out += token;
    }
  });
  return out;
}

/**
 * The text of member `key` of the top-level object in `text` (valid JSON),
 * exactly as written, or undefined when the top level is not an object or
 * has no such member. The first occurrence wins.
 */
export function memberText(text: string, key: string): string | undefined {
  assertJson(text);
  const tokens: string[] = [];
  forEachToken(text, (token) => tokens.push(token));
  if (tokens[0] !== '{') return undefined;
  let depth = 0;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    if (token === '{' || token === '[') depth++;
    else if (token === '}' || token === ']') depth--;
    else if (depth === 1 && token.startsWith('"') && tokens[index + 1] === ':' && JSON.parse(token) === key) {
      const start = index + 2;
      let end = start;
      let valueDepth = 0;
      do {
        const valueToken = tokens[end]!;
        if (valueToken === '{' || valueToken === '[') valueDepth++;
        else if (valueToken === '}' || valueToken === ']') valueDepth--;
        end++;
      } while (valueDepth > 0);
      return tokens.slice(start, end).join('');
    }
  }
  return undefined;
}

/**
 * Calls `emit` with each token of valid JSON text: punctuation one
 * character at a time, strings with their quotes and escapes as written,
 * and literals (numbers, true, false, null) as written. Whitespace between
 * tokens is skipped.
 */
function forEachToken(text: string, emit: (token: string) => void): void {
  let position = 0;
  while (position < text.length) {
    const char = text.charAt(position);
    if (char === ' ' || char === '\t' || char === '\n' || char === '\r') {
      position++;
    } else if (char === '"') {
      let end = position + 1;
      while (text.charAt(end) !== '"') end += text.charAt(end) === '\\' ? 2 : 1;
      emit(text.slice(position, end + 1));
      position = end + 1;
    } else if ('{}[],:'.includes(char)) {
      emit(char);
      position++;
    } else {
      let end = position + 1;
      while (end < text.length && !' \t\n\r{}[],:"'.includes(text.charAt(end))) end++;
      emit(text.slice(position, end));
      position = end;
    }
  }
}
