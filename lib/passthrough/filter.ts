/**
 * The event-name filter of `registerMonitorEvent`, with libvirt's semantics
 * (docs/monitor-facts.md §5, `virsh qemu-monitor-event --event/--regex/--no-case`):
 *
 *   event null          every event
 *   no flags            the name equals `event`, case-sensitively
 *   NOCASE              the name equals `event` ignoring case
 *   REGEX               `event` is a regular expression found anywhere in
 *                       the name (unanchored: `OP` matches STOP; write
 *                       `^STOP$` for exactly one name)
 *   REGEX | NOCASE      the same, ignoring case (RegExp flag `i`)
 *
 * The expression is a JavaScript RegExp (no `u` flag), not libvirt's POSIX
 * extended regex: the common subset (`.`, `*`, `+`, `?`, `|`, `^`, `$`,
 * `[...]`, groups) behaves alike. Ignoring case means JavaScript's RegExp
 * case folding in both modes (simple per-character upper-casing), which
 * for QEMU's ASCII event names is plain ASCII case-insensitivity, as in
 * libvirt.
 */
import { InvalidArgumentError } from '../errors.js';
import { MonitorEventFlags } from './flags.js';

/** Says whether an event name passes a registration's filter. */
export type EventNameFilter = (eventName: string) => boolean;

const matchEverything: EventNameFilter = () => true;

/**
 * Builds the filter for (`event`, `flags`). Throws InvalidArgumentError
 * `failed to compile regex '…': …` for an invalid expression under REGEX.
 * `flags` must already be checked.
 */
export function compileEventFilter(event: string | null, flags: number): EventNameFilter {
  if (event === null) return matchEverything;
  const ignoreCase = (flags & MonitorEventFlags.NOCASE) !== 0;
  if ((flags & MonitorEventFlags.REGEX) !== 0) {
    let expression: RegExp;
    try {
      // Only `i`, never `g` or `y`: test() must not carry lastIndex between events.
      expression = new RegExp(event, ignoreCase ? 'i' : '');
    } catch (error) {
      throw new InvalidArgumentError(`failed to compile regex '${event}': ${(error as Error).message}`, undefined, { cause: error });
    }
    return (eventName) => expression.test(eventName);
  }
  if (ignoreCase) {
    // An anchored literal under `i`: the same case folding as REGEX | NOCASE.
    const literal = new RegExp(`^(?:${escapeRegExp(event)})$`, 'i');
    return (eventName) => literal.test(eventName);
  }
  return (eventName) => eventName === event;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
