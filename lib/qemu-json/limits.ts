/**
 * The limits QEMU's JSON streamer (qobject/json-streamer.c, 7.2) puts on one
 * message, the texts it refuses a message with, and the limits qmpx adds
 * where it reads JSON itself. Every reader of client input checks them in
 * QEMU's order, token by token as the tokens arrive: size, count, nesting.
 */

/** QEMU's MAX_NESTING: `{` and `[` open at once. */
export const MAX_NESTING = 1024;
/** QEMU's MAX_TOKEN_COUNT: tokens one message may hold. */
export const MAX_TOKEN_COUNT = 2 * 1024 * 1024;
/** QEMU's MAX_TOKEN_SIZE: a message's token bytes (whitespace excluded) must stay below this. */
export const MAX_TOKEN_BYTES = 64 * 1024 * 1024;

/** Token bytes one client message may hold in the proxy, which disconnects the client past it (QEMU allows MAX_TOKEN_BYTES). */
export const DEFAULT_MAX_CLIENT_MESSAGE_BYTES = 1024 * 1024;

/**
 * Nesting the reader of QEMU's output accepts: QEMU prints what it holds,
 * and it holds nothing deeper than it accepts, so deeper text is refused
 * rather than recursed into.
 */
export const MAX_OUTPUT_NESTING = MAX_NESTING;

export const TOKEN_SIZE_EXCEEDED = 'JSON token size limit exceeded';
export const TOKEN_COUNT_EXCEEDED = 'JSON token count limit exceeded';
export const NESTING_EXCEEDED = 'JSON nesting depth limit exceeded';

/**
 * QEMU's refusal of one more token after the size check: `heldTokens`
 * tokens are in the message before it, `depth` is the nesting with it
 * counted (a closing token has already closed its level). Null when QEMU
 * takes it.
 */
export function countOrNestingError(heldTokens: number, depth: number): string | null {
  if (heldTokens + 1 > MAX_TOKEN_COUNT) return TOKEN_COUNT_EXCEEDED;
  if (depth > MAX_NESTING) return NESTING_EXCEEDED;
  return null;
}
