/**
 * JSON the way QEMU writes it, so the fake peer's bytes look like QEMU's
 * (docs/monitor-facts.md §2): separators `", "` and `": "`, empty containers as `{}` / `[]`,
 * pure ASCII output with `\uXXXX` upper-case escapes (surrogate pairs too,
 * and DEL), `/` not escaped. Checked against QEMU 7.2 echoing ids.
 */

/** A JSON token written verbatim, e.g. a number JavaScript cannot hold: `rawJson('18446744073709551615')`. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** Shorthand for `new RawJson(text)`. */
export function rawJson(text: string): RawJson {
  return new RawJson(text);
}

/** The greeting QEMU 7.2.22 sends on accept (docs/monitor-facts.md §2), without its CRLF. */
export const QEMU_7_2_GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}';

/**
 * Serialises `value` exactly as QEMU would, without a line terminator.
 * Takes plain JSON values, plus `bigint` and `RawJson` for numbers beyond
 * 2^53, and lossless-json's `LosslessNumber` (anything with
 * `isLosslessNumber: true` and a string `value`). Object members that are
 * `undefined` are left out, as in `JSON.stringify`. Throws on anything else.
 */
export function formatLikeQemu(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return String(value);
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`formatLikeQemu: ${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'string':
      return quoteLikeQemu(value);
    case 'object':
      break;
    default:
      throw new TypeError(`formatLikeQemu: cannot write a ${typeof value}`);
  }
  if (value instanceof RawJson) return value.text;
  if (isLosslessNumber(value)) return value.value;
  if (Array.isArray(value)) return `[${value.map(formatLikeQemu).join(', ')}]`;
  const members = Object.entries(value)
    .filter(([, member]) => member !== undefined)
    .map(([key, member]) => `${quoteLikeQemu(key)}: ${formatLikeQemu(member)}`);
  return `{${members.join(', ')}}`;
}

/**
 * A QMP event object in QEMU's member order (timestamp, event, data). The
 * timestamp defaults to now, as QEMU stamps events with the wall clock.
 */
export function qmpEvent(
  name: string,
  data?: Record<string, unknown>,
  timestamp: { seconds: number; microseconds: number } = wallClockTimestamp(),
): { timestamp: { seconds: number; microseconds: number }; event: string; data?: Record<string, unknown> } {
  return data === undefined ? { timestamp, event: name } : { timestamp, event: name, data };
}

function wallClockTimestamp(): { seconds: number; microseconds: number } {
  const nowMs = Date.now();
  return { seconds: Math.floor(nowMs / 1000), microseconds: (nowMs % 1000) * 1000 };
}

function isLosslessNumber(value: object): value is { value: string } {
  return (value as { isLosslessNumber?: unknown }).isLosslessNumber === true && typeof (value as { value?: unknown }).value === 'string';
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

function quoteLikeQemu(text: string): string {
  let quoted = '"';
  // Iterating UTF-16 code units: a character outside the BMP becomes its
  // surrogate pair, which is what QEMU writes.
  for (let index = 0; index < text.length; index++) {
    const char = text.charAt(index);
    const code = text.charCodeAt(index);
    const short = SHORT_ESCAPES[char];
    if (short !== undefined) quoted += short;
    else if (code < 0x20 || code >= 0x7f) quoted += `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
    else quoted += char;
  }
  return `${quoted}"`;
}
