/**
 * Lossless JSON for the monitor wire (DESIGN.md invariant 5).
 *
 * QEMU emits uint64 values (guest-get-time nanoseconds, block sizes, ids the
 * caller chose) that JSON.parse would round. The fast path is plain
 * JSON.parse, taken whenever the text has no run of 16 or more digits: every
 * integer of 15 digits or fewer is exact in a double. Only texts that might
 * hold a wider integer go through lossless-json, where integers outside
 * ±2^53 become `bigint`.
 */
import { isInteger, isSafeNumber, parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';

const MAYBE_UNSAFE_INTEGER = /\d{16}/;

function parseNumberToken(token: string): number | bigint {
  if (isInteger(token) && !isSafeNumber(token)) return BigInt(token);
  return Number(token);
}

/**
 * Parses JSON text, returning integers beyond ±2^53 as `bigint`.
 * Throws SyntaxError on invalid JSON.
 */
export function parseJsonLossless(text: string): unknown {
  if (!MAYBE_UNSAFE_INTEGER.test(text)) return JSON.parse(text);
  return parseLossless(text, null, parseNumberToken);
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
