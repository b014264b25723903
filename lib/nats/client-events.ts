/**
 * Reading the fleet's events: which subject to subscribe to for host, VM
 * and event globs, the local filter for what NATS wildcards cannot say, and
 * an event message read back into its host, VM and QEMU event.
 *
 * NATS wildcards match whole tokens only (`*` one token, `>` the rest), so
 * a glob with no wildcard in it becomes its exact token and narrows the
 * subscription at the server; a glob with one (`web-*`) becomes `*` there,
 * and the glob itself is applied here to the decoded name.
 */
import type { Msg } from '@nats-io/transport-node';
import { InvalidArgumentError } from '../errors.js';
import { parseMonitorJson, isEvent, type QmpEvent } from '../qmp/wire.js';
import { encodeToken, parseSubject, SUBJECT_ROOT } from './subjects.js';

/** Which events: each absent part matches every name. */
export interface EventSelection {
  host?: string;
  vm?: string;
  event?: string;
  /** Match the globs without regard to letter case. */
  ignoreCase?: boolean;
}

/** An event from the fleet: where it came from and what QEMU sent. */
export interface FleetEvent {
  host: string;
  vm: string;
  event: QmpEvent;
  /** The body as the serve published it: QEMU's JSON of the event. */
  text: string;
}

const GLOB_CHARS = /[*?[]/;

/** True when `pattern` has a glob wildcard (`*`, `?`, `[...]`). */
export function isGlob(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

/**
 * A shell-style glob as a whole-name matcher: `*` any run of characters,
 * `?` one character, `[abc]` / `[a-z]` / `[!abc]` one of a set, `\x` a
 * literal x. Throws InvalidArgumentError for an unclosed `[`.
 */
export function globMatcher(pattern: string, ignoreCase = false): (name: string) => boolean {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index]!;
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '\\' && index + 1 < pattern.length) source += escapeRegExp(pattern[++index]!);
    else if (char === '[') {
      const close = pattern.indexOf(']', index + 2);
      if (close === -1) throw new InvalidArgumentError(`unclosed [ in glob ${JSON.stringify(pattern)}`);
      let set = pattern.slice(index + 1, close);
      const negated = set.startsWith('!');
      if (negated) set = set.slice(1);
      source += `[${negated ? '^' : ''}${set.replace(/[\\\]^]/g, '\\$&')}]`;
      index = close;
    } else source += escapeRegExp(char);
  }
  const regex = new RegExp(`^${source}$`, ignoreCase ? 'sui' : 'su');
  return (name) => regex.test(name);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The token of one part of the subject: the exact name when it is one (and case matters), else `*`. */
function tokenFor(pattern: string | undefined, ignoreCase: boolean): string {
  if (pattern === undefined || isGlob(pattern) || ignoreCase) return '*';
  return encodeToken(pattern.replaceAll('\\', ''));
}

/** The narrowest NATS subject that holds every event the selection matches. */
export function eventSubject(selection: EventSelection): string {
  const ignoreCase = selection.ignoreCase ?? false;
  return [SUBJECT_ROOT, tokenFor(selection.host, ignoreCase), tokenFor(selection.vm, ignoreCase), 'evt', tokenFor(selection.event, ignoreCase)].join('.');
}

/** A predicate over decoded names that completes what the subject could not narrow. */
export function eventFilter(selection: EventSelection): (host: string, vm: string, event: string) => boolean {
  const ignoreCase = selection.ignoreCase ?? false;
  const match = (pattern: string | undefined): ((name: string) => boolean) =>
    pattern === undefined ? () => true : globMatcher(pattern, ignoreCase);
  const host = match(selection.host);
  const vm = match(selection.vm);
  const event = match(selection.event);
  return (hostName, vmName, eventName) => host(hostName) && vm(vmName) && event(eventName);
}

/**
 * The event a message carries, or null for a message that is not one (a
 * subject outside the scheme, a body that is not a QMP event): such a
 * message came from something other than a qmpx serve and is skipped.
 */
export function readFleetEvent(message: Pick<Msg, 'subject' | 'string'>): FleetEvent | null {
  const subject = parseSubject(message.subject);
  if (subject === null || subject.kind !== 'evt') return null;
  const text = message.string();
  let value: unknown;
  try {
    value = parseMonitorJson(text);
  } catch {
    return null;
  }
  if (!isEvent(value) || value.event !== subject.name) return null;
  return { host: subject.host, vm: subject.vm, event: value, text };
}
