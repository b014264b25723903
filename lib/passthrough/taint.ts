/**
 * Taint: once a monitor has carried a raw pass-through command, qmpx can no
 * longer vouch for QEMU's state (the caller may have changed anything behind
 * the library's back). Like libvirt's `custom-monitor` taint on a domain
 * (docs/monitor-facts.md §5), the mark is set on the first pass-through command, logged
 * once per monitor, and never cleared.
 */
import { defaultLogger, type Logger } from '../log.js';
import type { Monitor } from '../monitor.js';

/** The taint reason, libvirt's name for it. */
export const CUSTOM_MONITOR_TAINT = 'custom-monitor';

const tainted = new WeakSet<Monitor>();

/** True once a pass-through command has been issued on `mon`. */
export function isTainted(mon: Monitor): boolean {
  return tainted.has(mon);
}

/** Marks `mon` tainted; logs a warning the first time only. */
export function markTainted(mon: Monitor): void {
  if (tainted.has(mon)) return;
  tainted.add(mon);
  loggerOf(mon).warn(
    { monitor: labelOf(mon), taint: CUSTOM_MONITOR_TAINT },
    `monitor is tainted: ${CUSTOM_MONITOR_TAINT} (a raw pass-through command was issued; qmpx no longer knows QEMU's state for sure)`,
  );
}

/**
 * The logger the monitor was opened with. The Monitor interface does not
 * expose one, but qmpx's own monitors keep it in a `logger` field; any
 * other Monitor gets qmpx's default logger (warnings to stderr).
 */
export function loggerOf(mon: Monitor): Logger {
  const candidate = (mon as { logger?: unknown }).logger;
  if (typeof candidate === 'object' && candidate !== null && typeof (candidate as Logger).warn === 'function' && typeof (candidate as Logger).error === 'function') {
    return candidate as Logger;
  }
  return defaultLogger;
}

/** The monitor's label (its socket) when it has one, for log lines. */
export function labelOf(mon: Monitor): string | undefined {
  const label = (mon as { label?: unknown }).label;
  return typeof label === 'string' ? label : undefined;
}
