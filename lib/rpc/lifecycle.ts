/**
 * Domain states, reasons and lifecycle events, derived from QEMU the way
 * libvirt 9.0's QEMU driver derives them (qemu_process.c):
 *
 * - At attach, `query-status`: `running` is RUNNING (reason unknown: qmpx
 *   did not see it start); a stopped VM is PAUSED with the reason libvirt
 *   gives its run state (`paused` and `prelaunch` USER, migration states
 *   MIGRATION, `io-error` IOERROR, `watchdog` WATCHDOG, `save-vm` SAVE,
 *   anything else UNKNOWN), except `shutdown` (SHUTDOWN, unknown),
 *   `guest-panicked` (CRASHED, panicked) and `suspended` (PMSUSPENDED).
 * - STOP while running: PAUSED, reason USER when virDomainSuspend asked for
 *   it, else UNKNOWN (another client's `stop`); event SUSPENDED / PAUSED.
 * - RESUME while not running: RUNNING, reason UNPAUSED when virDomainResume
 *   asked for it, else UNKNOWN; event RESUMED / UNPAUSED.
 * - SHUTDOWN (first one only): SHUTDOWN state; event SHUTDOWN with detail
 *   GUEST or HOST from the event's `guest`, FINISHED without it. During a
 *   virDomainDestroy it is not reported (libvirt is killing the VM then).
 *   After virDomainReboot, QEMU is then reset and continued (libvirt's
 *   "fake reboot").
 * - RESET: the REBOOT event.
 * - The monitor closing: SHUTOFF; event STOPPED, detail DESTROYED after
 *   virDomainDestroy, SHUTDOWN after a SHUTDOWN event, FAILED otherwise
 *   (shut-off reasons DESTROYED, SHUTDOWN, CRASHED).
 * - A domain served again on a new monitor (QEMU restarted, the upstream
 *   reconnected): event STARTED / BOOTED, state from `query-status`.
 */
import type { Logger } from '../log.js';
import type { Monitor } from '../monitor.js';
import { DRIVER_ORIGIN } from '../request.js';
import type { LibvirtDomain } from './domains.js';

/** virDomainState. */
export const DomainState = { NOSTATE: 0, RUNNING: 1, BLOCKED: 2, PAUSED: 3, SHUTDOWN: 4, SHUTOFF: 5, CRASHED: 6, PMSUSPENDED: 7 } as const;
/** virDomainRunningReason values used here. */
export const RunningReason = { UNKNOWN: 0, BOOTED: 1, UNPAUSED: 5 } as const;
/** virDomainPausedReason. */
export const PausedReason = { UNKNOWN: 0, USER: 1, MIGRATION: 2, SAVE: 3, IOERROR: 5, WATCHDOG: 6 } as const;
/** virDomainShutoffReason values used here. */
export const ShutoffReason = { UNKNOWN: 0, SHUTDOWN: 1, DESTROYED: 2, CRASHED: 3 } as const;
/** virDomainEventType. */
export const LifecycleEvent = { STARTED: 2, SUSPENDED: 3, RESUMED: 4, STOPPED: 5, SHUTDOWN: 6 } as const;
/** The details used here: STARTED BOOTED, SUSPENDED PAUSED and RESUMED UNPAUSED are all 0. */
export const StoppedDetail = { SHUTDOWN: 0, DESTROYED: 1, FAILED: 5 } as const;
export const ShutdownDetail = { FINISHED: 0, GUEST: 1, HOST: 2 } as const;

export interface StateAndReason {
  state: number;
  reason: number;
}

const PAUSED_REASON_OF_STATUS: Readonly<Record<string, number>> = {
  paused: PausedReason.USER,
  prelaunch: PausedReason.USER,
  inmigrate: PausedReason.MIGRATION,
  postmigrate: PausedReason.MIGRATION,
  'finish-migrate': PausedReason.MIGRATION,
  'io-error': PausedReason.IOERROR,
  watchdog: PausedReason.WATCHDOG,
  'save-vm': PausedReason.SAVE,
};

/** The state libvirt gives a VM whose `query-status` says `status` / `running`. */
export function stateOfRunStatus(status: string, running: boolean): StateAndReason {
  if (running) return { state: DomainState.RUNNING, reason: RunningReason.UNKNOWN };
  switch (status) {
    case 'shutdown':
      return { state: DomainState.SHUTDOWN, reason: 0 };
    case 'guest-panicked':
      return { state: DomainState.CRASHED, reason: 1 };
    case 'suspended':
      return { state: DomainState.PMSUSPENDED, reason: 0 };
    default:
      return { state: DomainState.PAUSED, reason: PAUSED_REASON_OF_STATUS[status] ?? PausedReason.UNKNOWN };
  }
}

/** What a lifecycle listener is told: the domain, and a lifecycle (event, detail) or a reboot. */
export type DomainEvent =
  | { kind: 'lifecycle'; domain: DomainIdentity; event: number; detail: number }
  | { kind: 'reboot'; domain: DomainIdentity };

/** What names a domain on the wire. */
export interface DomainIdentity {
  name: string;
  uuid: string;
  id: number;
}

interface Tracked {
  identity: DomainIdentity;
  monitor: Monitor | undefined;
  current: StateAndReason;
  /** Settles once the attach-time `query-status` has been applied. */
  synced: Promise<void>;
  gotShutdown: boolean;
  pausedReason: number | undefined;
  runningReason: number | undefined;
  destroying: boolean;
  fakeReboot: boolean;
  unsubscribe: () => void;
}

/** Follows every served domain's monitor and keeps libvirt's view of its state. */
export class LifecycleTracker {
  /** By domain id: a domain keeps it while its name or uuid is learnt from QEMU. */
  private readonly tracked = new Map<number, Tracked>();
  private readonly listeners = new Set<(event: DomainEvent) => void>();

  constructor(private readonly logger: Logger) {}

  /** Adds a listener; returns what removes it. */
  listen(listener: (event: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Attaches to the monitors of `active` that are new (and announces them as
   * started when the domain was seen before). `knownOnly` is for a link
   * change: a domain then attached has started. With it, and
   * nobody listening for events, only domains already followed: the others
   * are attached when a call first needs them, so that a monitor nobody
   * asks about gets no query.
   */
  sync(active: readonly LibvirtDomain[], knownOnly = false): void {
    for (const domain of active) {
      const known = this.tracked.get(domain.id);
      if (known === undefined && knownOnly && this.listeners.size === 0) continue;
      if (known?.monitor === domain.monitor) {
        known.identity = identityOf(domain);
        continue;
      }
      known?.unsubscribe();
      // Seen before on another monitor, or brought by a link change while someone listens: it has (re)started.
      this.attach(domain, known !== undefined || knownOnly);
    }
  }

  /** The state of an active domain, once its attach-time status is known. */
  async stateOf(domain: LibvirtDomain): Promise<StateAndReason> {
    this.sync([domain]);
    const tracked = this.tracked.get(domain.id)!;
    await tracked.synced;
    return { ...tracked.current };
  }

  /** The state of a domain that has no monitor now: SHUTOFF with the reason its monitor ended with. */
  stateOfInactive(id: number): StateAndReason {
    const tracked = this.tracked.get(id);
    if (tracked !== undefined && tracked.current.state === DomainState.SHUTOFF) return { ...tracked.current };
    return { state: DomainState.SHUTOFF, reason: ShutoffReason.UNKNOWN };
  }

  /** virDomainSuspend / virDomainResume are about to send `stop` / `cont`: the reason the event will carry. */
  expect(domain: LibvirtDomain, what: 'pause' | 'resume' | 'destroy' | 'reboot'): void {
    this.sync([domain]);
    const tracked = this.tracked.get(domain.id)!;
    if (what === 'pause') tracked.pausedReason = PausedReason.USER;
    else if (what === 'resume') tracked.runningReason = RunningReason.UNPAUSED;
    else if (what === 'destroy') tracked.destroying = true;
    else tracked.fakeReboot = true;
  }

  /** A suspend or resume that failed: the next event is no longer its doing. */
  forget(domain: LibvirtDomain): void {
    const tracked = this.tracked.get(domain.id);
    if (tracked === undefined) return;
    tracked.pausedReason = undefined;
    tracked.runningReason = undefined;
  }

  /** Stops following every monitor. */
  close(): void {
    for (const tracked of this.tracked.values()) tracked.unsubscribe();
    this.listeners.clear();
  }

  private attach(domain: LibvirtDomain, announce: boolean): void {
    const monitor = domain.monitor;
    const tracked: Tracked = {
      identity: identityOf(domain),
      monitor,
      current: { state: DomainState.RUNNING, reason: RunningReason.UNKNOWN },
      synced: Promise.resolve(),
      gotShutdown: false,
      pausedReason: undefined,
      runningReason: undefined,
      destroying: false,
      fakeReboot: false,
      unsubscribe: () => undefined,
    };
    this.tracked.set(domain.id, tracked);
    const subscription = monitor.events$.subscribe((event) => {
      if (tracked.monitor === monitor) this.onEvent(tracked, event.event, event.data);
    });
    let ended = false;
    tracked.unsubscribe = () => {
      ended = true;
      subscription.unsubscribe();
    };
    tracked.synced = monitor
      .execute<{ status: string; running: boolean }>('query-status', undefined, { origin: DRIVER_ORIGIN })
      .then(
        (status) => {
          if (!ended) tracked.current = stateOfRunStatus(status.status, status.running);
        },
        (error: unknown) => this.logger.debug({ domain: domain.name, err: error }, 'domain state could not be read'),
      );
    void monitor.closed.then(() => {
      if (ended || tracked.monitor !== monitor) return;
      subscription.unsubscribe();
      tracked.monitor = undefined;
      const [reason, detail] = tracked.destroying
        ? [ShutoffReason.DESTROYED, StoppedDetail.DESTROYED]
        : tracked.gotShutdown
          ? [ShutoffReason.SHUTDOWN, StoppedDetail.SHUTDOWN]
          : [ShutoffReason.CRASHED, StoppedDetail.FAILED];
      tracked.current = { state: DomainState.SHUTOFF, reason };
      this.emit({ kind: 'lifecycle', domain: { ...tracked.identity, id: -1 }, event: LifecycleEvent.STOPPED, detail });
    });
    if (announce) {
      void tracked.synced.then(() => this.emit({ kind: 'lifecycle', domain: tracked.identity, event: LifecycleEvent.STARTED, detail: 0 }));
    }
  }

  private onEvent(tracked: Tracked, name: string, data: unknown): void {
    switch (name) {
      case 'STOP':
        if (tracked.current.state !== DomainState.RUNNING) return;
        tracked.current = { state: DomainState.PAUSED, reason: tracked.pausedReason ?? PausedReason.UNKNOWN };
        tracked.pausedReason = undefined;
        this.emit({ kind: 'lifecycle', domain: tracked.identity, event: LifecycleEvent.SUSPENDED, detail: 0 });
        return;
      case 'RESUME':
        if (tracked.current.state === DomainState.RUNNING) return;
        tracked.current = { state: DomainState.RUNNING, reason: tracked.runningReason ?? RunningReason.UNKNOWN };
        tracked.runningReason = undefined;
        this.emit({ kind: 'lifecycle', domain: tracked.identity, event: LifecycleEvent.RESUMED, detail: 0 });
        return;
      case 'SHUTDOWN': {
        if (tracked.gotShutdown || tracked.destroying) return;
        tracked.gotShutdown = true;
        tracked.current = { state: DomainState.SHUTDOWN, reason: 0 };
        const guest = (data as { guest?: unknown } | undefined)?.guest;
        const detail = guest === true ? ShutdownDetail.GUEST : guest === false ? ShutdownDetail.HOST : ShutdownDetail.FINISHED;
        this.emit({ kind: 'lifecycle', domain: tracked.identity, event: LifecycleEvent.SHUTDOWN, detail });
        if (tracked.fakeReboot) void this.fakeReboot(tracked);
        return;
      }
      case 'RESET':
        this.emit({ kind: 'reboot', domain: tracked.identity });
        return;
      default:
    }
  }

  /** libvirt's reboot: once the guest has shut down, QEMU (kept alive by -no-shutdown) is reset and continued. */
  private async fakeReboot(tracked: Tracked): Promise<void> {
    tracked.fakeReboot = false;
    const monitor = tracked.monitor;
    if (monitor === undefined) return;
    try {
      await monitor.execute('system_reset', undefined, { origin: DRIVER_ORIGIN });
      tracked.gotShutdown = false;
      tracked.runningReason = RunningReason.BOOTED;
      const status = await monitor.execute<{ running: boolean }>('query-status', undefined, { origin: DRIVER_ORIGIN });
      if (!status.running) await monitor.execute('cont', undefined, { origin: DRIVER_ORIGIN });
    } catch (error) {
      this.logger.debug({ domain: tracked.identity.name, err: error }, 'reboot: QEMU did not stay after the guest shut down');
    }
  }

  private emit(event: DomainEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

function identityOf(domain: LibvirtDomain): DomainIdentity {
  return { name: domain.name, uuid: domain.uuid, id: domain.id };
}
