/**
 * Numbers as QEMU writes and reads them: JSON's number grammar, the value a
 * number token stands for without losing digits, and how QEMU prints a
 * number it parsed (int64 and uint64 as integers, anything else as a
 * double with `%.17g`).
 */
import { isInteger, isSafeNumber } from 'lossless-json';

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** The index just past the JSON number that starts at `at`, or -1 when none starts there. */
export function jsonNumberEnd(text: string, at: number): number {
  NUMBER.lastIndex = at;
  return NUMBER.test(text) ? NUMBER.lastIndex : -1;
}

/** A number token's value: a `bigint` for an integer beyond ±2^53, which a double would round. */
export function numberFromToken(token: string): number | bigint {
  if (isInteger(token) && !isSafeNumber(token)) return BigInt(token);
  return Number(token);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** How QEMU re-prints a number token: int64 or uint64 as integers, everything else as a double. */
export function qemuNumber(token: string, float: boolean): string {
  if (!float) {
    const integer = BigInt(token);
    if (integer >= INT64_MIN && integer <= INT64_MAX) return integer.toString();
    if (!token.startsWith('-') && integer <= UINT64_MAX) return integer.toString();
  }
  return formatDouble(Number(token));
}

/** C's `%.17g`, which QEMU uses for doubles (and `inf`, which is not JSON, as QEMU writes it). */
export function formatDouble(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mantissa, exponentText] = x.toExponential(16).split('e') as [string, string];
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 17) {
    const digits = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
    return `${digits}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  const fixed = x.toFixed(16 - exponent);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}
