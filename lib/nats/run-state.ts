/**
 * The run state of every VM in one key-value bucket, so that a dashboard
 * reads the whole fleet with one call (the bucket's keys, or a watch):
 *
 *   bucket  qmpx-run-state (configurable)
 *   key     <host>.<vm>           (runStateKey: subject tokens, `=` for `%`)
 *   value   {"host":"hv-17","vm":"web-1","status":"paused","running":false,
 *            "monitor":"up","cause":"STOP","timestamp":"1700000000.123456",
 *            "updated":"2026-01-02T03:04:05.678Z"}
 *
 * One bucket for the fleet, not one per VM: a bucket is a stream, and its
 * name may not hold `.` (nor most of what a VM name may), so a bucket per
 * VM would mean thousands of streams and a second name encoding; one
 * bucket whose keys are `<host>.<vm>` is one stream, readable whole, and
 * the same key wildcards as subjects select a host (`hv-17.*`).
 *
 * `status` and `running` are QEMU's `query-status` answer, asked when the
 * monitor connects and again after each event that changes the run state
 * (STOP, RESUME, SHUTDOWN, ...), so the value is QEMU's word, not a guess
 * from event names; `cause` says what made it ask (`connect` or the event).
 * When the monitor goes away the last status stays with `"monitor":"down"`.
 * Only the latest value of a VM is kept while NATS is down, written once it
 * is back.
 */
import type { Logger } from '../log.js';
import type { QmpTimestamp } from '../qmp/wire.js';
import { timestampText } from './event-message.js';
import type { FleetLink } from './fleet-vm.js';
import { runStateKey } from './subjects.js';

/** Events after which QEMU's run state may have changed: the status is asked again. */
export const RUN_STATE_EVENTS: ReadonlySet<string> = new Set([
  'STOP',
  'RESUME',
  'SHUTDOWN',
  'RESET',
  'SUSPEND',
  'SUSPEND_DISK',
  'WAKEUP',
  'GUEST_PANICKED',
  'GUEST_CRASHLOADED',
  'WATCHDOG',
  'BLOCK_IO_ERROR',
  'MIGRATION',
]);

export interface RunStateValue {
  host: string;
  vm: string;
  status: string;
  running: boolean;
  monitor: 'up' | 'down';
  cause: string;
  timestamp?: string;
  updated: string;
}

/** Where values go: the bucket's put, once the bucket is open. */
export type RunStateStore = (key: string, value: string) => Promise<unknown>;

/** The run state of one VM, kept and written in order. */
export class VmRunState {
  private latest: RunStateValue | undefined;
  private written: RunStateValue | undefined;
  private writing = false;
  private store: RunStateStore | undefined;

  constructor(
    private readonly host: string,
    private readonly vmName: () => string,
    private readonly logger: Logger,
  ) {}

  /** The bucket is open (or open again): write what waits. */
  attach(store: RunStateStore | undefined): void {
    this.store = store;
    void this.write();
  }

  /** Asks `link` for the status now and records it; `cause` says why. Settles (never rejects) once QEMU answered or the link failed. */
  refresh(link: FleetLink, cause: string, timestamp?: QmpTimestamp): Promise<void> {
    return link.monitor.execute<{ status?: unknown; running?: unknown }>('query-status').then(
      (reply) => {
        if (typeof reply.status !== 'string') return;
        this.set({ status: reply.status, running: reply.running === true, monitor: 'up', cause, timestamp: timestamp && timestampText(timestamp) });
      },
      () => undefined, // the link went away: its close records the monitor down
    );
  }

  /** The monitor went away: the last status stays, marked down. */
  monitorDown(): void {
    const last = this.latest;
    this.set({ status: last?.status ?? 'unknown', running: last?.running ?? false, monitor: 'down', cause: 'monitor lost', timestamp: undefined });
  }

  private set(state: Pick<RunStateValue, 'status' | 'running' | 'monitor' | 'cause' | 'timestamp'>): void {
    const value: RunStateValue = { host: this.host, vm: this.vmName(), ...state, updated: new Date().toISOString() };
    if (value.timestamp === undefined) delete value.timestamp;
    this.latest = value;
    void this.write();
  }

  private async write(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.store !== undefined && this.latest !== undefined && this.latest !== this.written) {
        const value = this.latest;
        try {
          await this.store(runStateKey(this.host, value.vm), JSON.stringify(value));
        } catch (error) {
          this.logger.debug({ monitor: value.vm, err: (error as Error).message }, 'run state not written to NATS; written when it is back');
          return;
        }
        this.written = value;
      }
    } finally {
      this.writing = false;
    }
  }
}
