/**
 * Values printed as QEMU's JSON writer (qobject/qjson.c, compact) prints
 * them: `", "` and `": "` separators, ASCII only with upper-case `\uXXXX`
 * escapes, `/` not escaped (docs/monitor-facts.md §2).
 */
import type { QValue } from './parser.js';
import { qemuNumber } from './numbers.js';
import { qdictOrder } from './qdict-order.js';

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** A string as QEMU's JSON writer quotes it (`to_json_str`): ASCII only, `/` not escaped. */
export function quoteLikeQemu(text: string): string {
  let quoted = '"';
  // Code units: a character beyond the BMP becomes its surrogate pair, as in QEMU.
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

/**
 * What QEMU prints for a value it parsed (an `id` it echoes): dict members
 * in QEMU's hash-table order, integers normalised, out-of-range numbers as
 * doubles (`1e3` → `1000`, `{"a":[1]}` → `{"a": [1]}`).
 */
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

/**
 * A JavaScript value in QEMU's layout, compact, for replies qmpx builds
 * itself from values it holds (members in the object's order, numbers as
 * JavaScript writes them). `bigint` and lossless-json's LosslessNumber are
 * written as their integer / number tokens. Throws TypeError for what JSON
 * cannot hold.
 */
export function formatLikeQemu(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return String(value);
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} as JSON`);
      return JSON.stringify(value);
    case 'string':
      return quoteLikeQemu(value);
    case 'object':
      break;
    default:
      throw new TypeError(`cannot write a ${typeof value} as JSON`);
  }
  const token = value as { isLosslessNumber?: unknown; value?: unknown };
  if (token.isLosslessNumber === true && typeof token.value === 'string') return token.value;
  if (Array.isArray(value)) return `[${value.map(formatLikeQemu).join(', ')}]`;
  const members = Object.entries(value)
    .filter(([, member]) => member !== undefined)
    .map(([key, member]) => `${quoteLikeQemu(key)}: ${formatLikeQemu(member)}`);
  return `{${members.join(', ')}}`;
}
