/**
 * The top-level members of a message QEMU wrote, found by bracket and
 * string structure only, whatever the values hold (QEMU's `inf` and `nan`
 * included): enough to tell a message apart (event, reply, greeting; its
 * id) when its values are unreadable, and to put a reply's id in QEMU's
 * text.
 */
import { isJsonSpace, stringEnd } from './tokens.js';

/** A member of a top-level object: its key and where its key and value are in the text. */
export interface OutputMember {
  readonly key: string;
  /** Where the key's opening quote is. */
  readonly keyStart: number;
  /** The value's text is `text.slice(start, end)`, without surrounding whitespace. */
  readonly start: number;
  readonly end: number;
}

/**
 * The members of the object `text` holds, in document order, with values
 * skipped over by bracket and string structure only (any token inside is
 * accepted). Null when the text is not `{ "key": value, ... }` at the top
 * level. Linear in the text's length.
 */
export function scanTopLevelMembers(text: string): OutputMember[] | null {
  const scan = scanMembers(text);
  return scan.complete ? scan.members : null;
}

/**
 * The members of the top-level object in `text` that can be read before the
 * first thing that is not `"key": value` (all of them in a well-formed
 * object): enough to tell what a broken message of QEMU's was meant to be.
 */
export function readableMembers(text: string): OutputMember[] {
  return scanMembers(text).members;
}

function scanMembers(text: string): { members: OutputMember[]; complete: boolean } {
  const members: OutputMember[] = [];
  const incomplete = { members, complete: false };
  let at = 0;
  const skipSpace = (): void => {
    while (at < text.length && isJsonSpace(text.charCodeAt(at))) at++;
  };
  skipSpace();
  if (text.charCodeAt(at) !== 0x7b) return incomplete;
  at++;
  skipSpace();
  let closed = text.charCodeAt(at) === 0x7d;
  if (closed) at++;
  while (!closed) {
    skipSpace();
    const keyStart = at;
    const keyEnd = text.charCodeAt(at) === 0x22 ? stringEnd(text, at) : -1;
    if (keyEnd === -1) return incomplete;
    let key: string;
    try {
      key = JSON.parse(text.slice(keyStart, keyEnd)) as string;
    } catch {
      return incomplete;
    }
    at = keyEnd;
    skipSpace();
    if (text.charCodeAt(at++) !== 0x3a) return incomplete;
    skipSpace();
    const start = at;
    let depth = 0;
    for (; at < text.length; at++) {
      const code = text.charCodeAt(at);
      if (code === 0x22) {
        const end = stringEnd(text, at);
        if (end === -1) return incomplete;
        at = end - 1;
      } else if (code === 0x7b || code === 0x5b) {
        depth++;
      } else if (code === 0x7d || code === 0x5d) {
        if (depth === 0) break;
        depth--;
      } else if (code === 0x2c && depth === 0) {
        break;
      }
    }
    if (at >= text.length) return incomplete;
    let end = at;
    while (end > start && isJsonSpace(text.charCodeAt(end - 1))) end--;
    if (end === start) return incomplete;
    members.push({ key, keyStart, start, end });
    const code = text.charCodeAt(at++);
    if (code === 0x7d) closed = true;
    else if (code !== 0x2c) return incomplete;
  }
  skipSpace();
  return at === text.length ? { members, complete: true } : incomplete;
}
