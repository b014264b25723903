/**
 * Taint: once a monitor has carried a raw pass-through command, qmpx can no
 * longer vouch for QEMU's state (the caller may have changed anything behind
 * the library's back). Like libvirt's `custom-monitor` taint on a domain
 * (docs/monitor-facts.md §5), the mark is set on the first pass-through command, logged
 * once per monitor, and never cleared.
 */
import type { Monitor } from '../contract.js';

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
  mon.logger.warn(
    { monitor: mon.label, taint: CUSTOM_MONITOR_TAINT },
    `monitor is tainted: ${CUSTOM_MONITOR_TAINT} (a raw pass-through command was issued; qmpx no longer knows QEMU's state for sure)`,
  );
}
