/**
 * The NATS subjects of the fleet bridge, and how host and VM names become
 * subject tokens.
 *
 *   qmpx.<host>.<vm>.evt.<EVENT>     every QMP event, QEMU's JSON as the body
 *   qmpx.<host>.<vm>.cmd.<command>   request-reply under the full policy
 *   qmpx.<host>.<vm>.ro.<command>    request-reply under the read-only policy
 *
 * Commands and events are their own class token because NATS permissions
 * match whole tokens only: `qmpx.*.*.ro.>` can be granted without `.cmd.`,
 * and `qmpx.*.*.cmd.quit` denied alone.
 *
 * A token is a name with every byte outside `[A-Za-z0-9_-]` written as `%`
 * and two upper-case hex digits of its UTF-8 encoding (as in URLs), so `.`,
 * `*`, `>`, `%` and white space never reach a subject and every token reads
 * back to exactly its name. QEMU's event names and most command names pass
 * unchanged; `__com.redhat_drive_add` becomes `__com%2Eredhat_drive_add`.
 */

export const SUBJECT_ROOT = 'qmpx';

/** The subject classes after `<host>.<vm>`. */
export type SubjectClass = 'evt' | 'cmd' | 'ro';

const SAFE_BYTE = /^[A-Za-z0-9_-]$/;

/** `name` as one subject token; the empty name has no token and is refused (RangeError). */
export function encodeToken(name: string): string {
  if (name === '') throw new RangeError('a subject token cannot be empty');
  let token = '';
  for (const char of name) {
    if (SAFE_BYTE.test(char)) {
      token += char;
      continue;
    }
    for (const byte of Buffer.from(char, 'utf8')) token += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return token;
}

/** The name a token stands for; throws RangeError on a token encodeToken cannot have written. */
export function decodeToken(token: string): string {
  if (token === '' || !/^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/.test(token)) {
    throw new RangeError(`not a qmpx subject token: ${JSON.stringify(token)}`);
  }
  try {
    return decodeURIComponent(token);
  } catch {
    throw new RangeError(`not a qmpx subject token (bytes are not UTF-8): ${JSON.stringify(token)}`);
  }
}

/** `qmpx.<host>.<vm>.<class>.<name>` with every name encoded. */
export function subjectFor(host: string, vm: string, kind: SubjectClass, name: string): string {
  return [SUBJECT_ROOT, encodeToken(host), encodeToken(vm), kind, encodeToken(name)].join('.');
}

/** The subscription of one VM's class: `qmpx.<host>.<vm>.<class>.*`. */
export function vmClassWildcard(host: string, vm: string, kind: SubjectClass): string {
  return [SUBJECT_ROOT, encodeToken(host), encodeToken(vm), kind, '*'].join('.');
}

export interface ParsedSubject {
  host: string;
  vm: string;
  kind: SubjectClass;
  name: string;
}

/** Reads a subject this module wrote; null for anything else. */
export function parseSubject(subject: string): ParsedSubject | null {
  const tokens = subject.split('.');
  if (tokens.length !== 5 || tokens[0] !== SUBJECT_ROOT) return null;
  const kind = tokens[3];
  if (kind !== 'evt' && kind !== 'cmd' && kind !== 'ro') return null;
  try {
    return { host: decodeToken(tokens[1]!), vm: decodeToken(tokens[2]!), kind, name: decodeToken(tokens[4]!) };
  } catch {
    return null;
  }
}

/**
 * The key of a VM in the run-state key-value bucket: `<host>.<vm>`, each
 * token as in a subject with `=` in place of `%`, since a key may not hold
 * `%` (keys allow `[-/_=.A-Za-z0-9]`). `=` never occurs in a token
 * otherwise (encodeToken writes it as `%3D`), so keys read back exactly.
 */
export function runStateKey(host: string, vm: string): string {
  return `${keyToken(host)}.${keyToken(vm)}`;
}

/** Reads a key runStateKey wrote; null for anything else. */
export function parseRunStateKey(key: string): { host: string; vm: string } | null {
  const tokens = key.split('.');
  if (tokens.length !== 2) return null;
  try {
    return { host: decodeToken(tokens[0]!.replaceAll('=', '%')), vm: decodeToken(tokens[1]!.replaceAll('=', '%')) };
  } catch {
    return null;
  }
}

function keyToken(name: string): string {
  return encodeToken(name).replaceAll('%', '=');
}
