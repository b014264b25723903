/**
 * Code points as QEMU's JSON code reads and writes them: which it accepts
 * (`is_valid_codepoint`), its `\u` escapes with surrogate pairs
 * (parse_string in qobject/json-parser.c), and its modified UTF-8
 * (util/unicode.c `mod_utf8_codepoint`), where U+0000 is the two bytes
 * C0 80.
 */

/** is_valid_codepoint(): within Unicode, no surrogates, no noncharacters. */
export function isValidCodePoint(codePoint: number): boolean {
  if (codePoint < 0 || codePoint > 0x10ffff) return false;
  if ((codePoint >= 0xfdd0 && codePoint <= 0xfdef) || (codePoint & 0xfffe) === 0xfffe) return false;
  return !(codePoint >= 0xd800 && codePoint <= 0xdfff);
}

function hexDigit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** The four hex digits at `at` as a number, or -1 when any of them is not a hex digit (or missing). */
export function hex4(text: string, at: number): number {
  let value = 0;
  for (let k = 0; k < 4; k++) {
    const digit = hexDigit(text.charCodeAt(at + k));
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** A `\u` escape as QEMU reads it: the code point (-1 when QEMU refuses it) and the index after what it took. */
export interface UnicodeEscape {
  readonly codePoint: number;
  readonly end: number;
}

/**
 * The `\uXXXX` escape whose backslash is at `backslash`, as parse_string()
 * reads it: a leading surrogate takes a directly following `\u` escape
 * along only if that one is a trailing surrogate; otherwise, or for an
 * invalid code point, QEMU refuses the escapes taken
 * (`<text from the backslash to end> is not a valid Unicode character`).
 */
export function readUnicodeEscape(text: string, backslash: number): UnicodeEscape {
  let codePoint = hex4(text, backslash + 2);
  let end = backslash + 6;
  if (codePoint >= 0xd800 && codePoint <= 0xdbff && text.charCodeAt(end) === 0x5c && text.charCodeAt(end + 1) === 0x75) {
    const trailing = hex4(text, end + 2);
    if (trailing >= 0xdc00 && trailing <= 0xdfff) {
      codePoint = 0x10000 + ((codePoint & 0x3ff) << 10) + (trailing & 0x3ff);
      end += 6;
    } else {
      codePoint = -1;
    }
  }
  return { codePoint: isValidCodePoint(codePoint) ? codePoint : -1, end };
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
  if (!isValidCodePoint(codePoint)) return { codePoint: -1, next };
  if (codePoint < MIN_CODE_POINT[length - 2]! && !(codePoint === 0 && length === 2)) return { codePoint: -1, next };
  return { codePoint, next };
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

/** `text` in QEMU's modified UTF-8: UTF-8, with U+0000 as C0 80. */
export function modifiedUtf8(text: string): Uint8Array {
  const utf8 = Buffer.from(text, 'utf8');
  if (!utf8.includes(0)) return utf8;
  const bytes: number[] = [];
  for (const byte of utf8) {
    if (byte === 0) bytes.push(0xc0, 0x80);
    else bytes.push(byte);
  }
  return Uint8Array.from(bytes);
}
