/**
 * Entry 'qmpx/passthrough': raw monitor strings and named-event callbacks
 * beside the library's own commands, after libvirt-qemu (a separate entry a
 * program imports on purpose, as libvirt-qemu.so is separate from
 * libvirt.so). Argument and reply shapes are QEMU's, not qmpx's: they can
 * change between QEMU versions.
 */
export { MonitorCommandFlags, MonitorEventFlags } from './flags.js';
export { monitorCommand, type MonitorCommandOptions } from './command.js';
export { registerMonitorEvent, deregisterMonitorEvent, type MonitorEventCallback } from './events.js';
export { isTainted, CUSTOM_MONITOR_TAINT } from './taint.js';
export { InvalidArgumentError } from '../errors.js';
