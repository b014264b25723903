/**
 * Lossless JSON for the monitor wire (docs/design.md invariant 5).
 *
 * QEMU emits uint64 values (guest-get-time nanoseconds, block sizes, ids the
 * caller chose) that JSON.parse would round. Everything is parsed with plain
 * JSON.parse first; only when the result holds a number of magnitude 2^53 or
 * more (so possibly rounded) is the text parsed again with lossless-json,
 * where integers outside ±2^53 become `bigint`.
 */
import { parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';
import { numberFromToken } from '../qemu-json/numbers.js';

const TWO_POW_53 = 2 ** 53;

/** True if a JSON.parse result holds a number that may have been rounded. */
function mayHaveRounded(value: unknown): boolean {
  if (typeof value === 'number') return value >= TWO_POW_53 || value <= -TWO_POW_53;
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (mayHaveRounded(item)) return true;
    return false;
  }
  for (const key in value) if (mayHaveRounded((value as Record<string, unknown>)[key])) return true;
  return false;
}

/**
 * Parses JSON text, returning integers beyond ±2^53 as `bigint`.
 * Throws SyntaxError on invalid JSON.
 */
export function parseJsonLossless(text: string): unknown {
  return losslessFromParsed(text, JSON.parse(text));
}

/**
 * Given `text` and its JSON.parse value, returns that value, or a lossless
 * re-parse when some number in it reached ±2^53 and may have been rounded.
 */
export function losslessFromParsed(text: string, parsed: unknown): unknown {
  return mayHaveRounded(parsed) ? parseLossless(text, null, numberFromToken) : parsed;
}

/**
 * Serialises a value to compact JSON; `bigint` values are written as integer
 * tokens. Throws TypeError for values JSON cannot represent (cycles).
 */
export function stringifyJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (!(error instanceof TypeError) || !/BigInt/i.test(error.message)) throw error;
    return stringifyLossless(value) as string;
  }
}
