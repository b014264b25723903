/**
 * Flag values, numerically libvirt's (`VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP`,
 * `VIR_CONNECT_DOMAIN_QEMU_MONITOR_EVENT_REGISTER_REGEX` / `_NOCASE`), so
 * code and flag numbers carry over unchanged (docs/monitor-facts.md §6: the same numbers
 * travel in the libvirt RPC messages).
 */
import { UnsupportedError } from '../errors.js';

/** Flags of `monitorCommand`. */
export const MonitorCommandFlags = {
  NONE: 0,
  /** The command is a human-monitor (HMP) command line, not QMP JSON. */
  HMP: 1,
} as const;

/** Flags of `registerMonitorEvent`. */
export const MonitorEventFlags = {
  /** The event filter is a regular expression, matched anywhere in the name. */
  REGEX: 1,
  /** Compare (or match) without regard to case. */
  NOCASE: 2,
} as const;

/**
 * Throws UnsupportedError `unsupported flags (0x…)` naming the bits outside
 * `known`, as libvirt's virCheckFlags does; also for flags that are not a
 * 32-bit unsigned integer.
 */
export function checkFlags(flags: number, known: number): void {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) {
    throw new UnsupportedError(`unsupported flags (${String(flags)}): flags must be an unsigned 32-bit integer`);
  }
  // `>>> 0` keeps bit 31 positive after the bitwise operators' int32 view.
  const unknown = (flags & ~known) >>> 0;
  if (unknown !== 0) throw new UnsupportedError(`unsupported flags (0x${unknown.toString(16)})`);
}
