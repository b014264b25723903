/**
 * Named-event callbacks on a monitor, libvirt's
 * `virConnectDomainQemuMonitorEventRegister` (docs/monitor-facts.md §5), built on
 * `mon.events$`, which stays the primary reactive API:
 *
 * - ids count from 1 per monitor, in registration order;
 * - callbacks run synchronously from `events$`, so each one sees its events
 *   in wire order, and an event that arrived before a command's reply has
 *   been delivered before that reply's promise settles (docs/design.md
 *   invariant 4); registrations are called in the order they were made;
 * - a callback that throws (or returns a promise that rejects) is logged on
 *   the monitor's logger and changes nothing for other callbacks, later
 *   events or the monitor;
 * - registrations end when the monitor closes: no callback runs after
 *   that, registering on a closed monitor throws ConnectionClosedError, and
 *   deregistering an id that ended this way is allowed (a no-op) so that
 *   cleanup code need not race the close.
 */
import type { Subscription } from 'rxjs';
import { ConnectionClosedError, InvalidArgumentError } from '../errors.js';
import type { Monitor } from '../contract.js';
import type { QmpEvent } from '../qmp/wire.js';
import { stringifyJson } from '../qmp/json.js';
import { compileEventFilter, type EventNameFilter } from './filter.js';
import { checkFlags, MonitorEventFlags } from './flags.js';

/**
 * Called for each matching event with its name, QEMU's timestamp (seconds
 * and microseconds, wall clock) and `details`: the event's `data` as compact
 * JSON text (`{"guest":false,"reason":"host-qmp-system-reset"}`, as libvirt
 * gives it), or null when the event has none. It is re-serialised from the
 * parsed event: integers beyond ±2^53 keep every digit, other numbers are
 * written as JavaScript writes them (`1.0` becomes `1`).
 */
export type MonitorEventCallback = (event: string, seconds: number, micros: number, details: string | null) => void;

interface Registration {
  readonly id: number;
  readonly event: string | null;
  readonly flags: number;
  readonly callback: MonitorEventCallback;
  readonly matches: EventNameFilter;
}

const ALL_EVENT_FLAGS = MonitorEventFlags.REGEX | MonitorEventFlags.NOCASE;

class EventRegistry {
  /** Replaced, never mutated, so a dispatch in progress keeps the list it started with. */
  private registrations: readonly Registration[] = [];
  /** Ids whose registration ended because the monitor closed. */
  private readonly endedIds = new Set<number>();
  private nextId = 1;
  private subscription: Subscription | undefined;
  private ended = false;

  constructor(private readonly mon: Monitor) {}

  register(event: string | null, callback: MonitorEventCallback, flags: number): number {
    if (this.ended || this.mon.state === 'closed') {
      throw new ConnectionClosedError('cannot register an event callback: the monitor is closed');
    }
    const tracked = this.registrations.some(
      (registration) => registration.event === event && registration.flags === flags && registration.callback === callback,
    );
    if (tracked) throw new InvalidArgumentError('event callback already tracked');
    const matches = compileEventFilter(event, flags);
    const id = this.nextId++;
    this.registrations = [...this.registrations, { id, event, flags, callback, matches }];
    this.subscription ??= this.mon.events$.subscribe({
      next: (qmpEvent) => this.dispatch(qmpEvent),
      complete: () => this.end(),
      error: () => this.end(),
    });
    return id;
  }

  deregister(id: number): void {
    const remaining = this.registrations.filter((registration) => registration.id !== id);
    if (remaining.length !== this.registrations.length) {
      this.registrations = remaining;
      if (remaining.length === 0) {
        this.subscription?.unsubscribe();
        this.subscription = undefined;
      }
      return;
    }
    if (this.endedIds.delete(id)) return;
    throw new InvalidArgumentError(`event callback id ${id} not registered`);
  }

  private dispatch(qmpEvent: QmpEvent): void {
    const registrations = this.registrations;
    let details: string | null | undefined;
    for (const registration of registrations) {
      // Deregistered by a callback earlier in this same dispatch: skip it.
      if (this.registrations !== registrations && !this.registrations.includes(registration)) continue;
      if (!registration.matches(qmpEvent.event)) continue;
      if (details === undefined) details = qmpEvent.data === undefined ? null : stringifyJson(qmpEvent.data);
      const { seconds, microseconds } = qmpEvent.timestamp;
      try {
        const result: unknown = registration.callback(qmpEvent.event, seconds, microseconds, details);
        if (isThenable(result)) result.then(undefined, (error: unknown) => this.reportFailure(registration, qmpEvent, error));
      } catch (error) {
        this.reportFailure(registration, qmpEvent, error);
      }
    }
  }

  private reportFailure(registration: Registration, qmpEvent: QmpEvent, error: unknown): void {
    this.mon.logger.error(
      { monitor: this.mon.label, callbackId: registration.id, event: qmpEvent.event, err: describeError(error) },
      'monitor event callback failed; other callbacks and later events are unaffected',
    );
  }

  private end(): void {
    this.ended = true;
    for (const registration of this.registrations) this.endedIds.add(registration.id);
    this.registrations = [];
    this.subscription = undefined;
  }
}

const registries = new WeakMap<Monitor, EventRegistry>();

function registryOf(mon: Monitor): EventRegistry {
  let registry = registries.get(mon);
  if (registry === undefined) {
    registry = new EventRegistry(mon);
    registries.set(mon, registry);
  }
  return registry;
}

/**
 * Calls `cb` for every event on `mon` that passes the filter (`event` and
 * `flags`, see MonitorEventFlags and filter.ts) until deregistered or the
 * monitor closes; returns the registration id (1, 2, … per monitor).
 * Throws UnsupportedError `unsupported flags (0x…)` for unknown flag bits,
 * InvalidArgumentError for an invalid regex (`failed to compile regex`),
 * the same (event, flags, cb) registered twice (`event callback already
 * tracked`) or a callback that is not a function, and
 * ConnectionClosedError on a closed monitor.
 */
export function registerMonitorEvent(mon: Monitor, event: string | null, cb: MonitorEventCallback, flags = 0): number {
  checkFlags(flags, ALL_EVENT_FLAGS);
  if (event !== null && typeof event !== 'string') throw new InvalidArgumentError(`the event filter must be a string or null, got ${typeof event}`);
  if (typeof cb !== 'function') throw new InvalidArgumentError(`the callback must be a function, got ${typeof cb}`);
  return registryOf(mon).register(event, cb, flags);
}

/**
 * Ends registration `callbackId` on `mon`: its callback is not called
 * again, not even for an event being dispatched right now. Throws
 * InvalidArgumentError `event callback id N not registered` for an id never
 * returned on this monitor or already deregistered. An id whose
 * registration ended with the monitor's close may still be deregistered once.
 */
export function deregisterMonitorEvent(mon: Monitor, callbackId: number): void {
  const registry = registries.get(mon);
  if (registry === undefined) throw new InvalidArgumentError(`event callback id ${callbackId} not registered`);
  registry.deregister(callbackId);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** pino's shape for an error (`type`, `message`, `stack`), readable by any logger. */
function describeError(error: unknown): object {
  if (error instanceof Error) return { type: error.name, message: error.message, stack: error.stack };
  return { type: typeof error, message: String(error) };
}
