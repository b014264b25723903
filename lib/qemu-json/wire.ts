/**
 * What qmpx writes to QEMU for a client's value: compact standard JSON with
 * every number token exactly as the client wrote it (docs/design.md
 * invariant 5), so that QEMU parses the numbers it would have parsed from
 * the client.
 */
import { LosslessNumber, parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';
import type { QValue } from './parser.js';

/** A parsed value as compact JSON, number tokens verbatim. */
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

/** Standard JSON text as compact JSON, number tokens verbatim. Throws SyntaxError for text that is not JSON. */
export function wireJsonFromText(jsonText: string): string {
  return stringifyLossless(parseLossless(jsonText, null, (token) => new LosslessNumber(token))) as string;
}
