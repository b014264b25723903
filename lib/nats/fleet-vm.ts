/**
 * What the fleet bridge needs of one VM `serve` shares: its name, its
 * upstream links, and the read-only policy of its sockets. `serve` hands
 * its monitors over in this shape; nothing here knows the proxy's classes.
 */
import type { Observable } from 'rxjs';
import type { CloseInfo, Monitor, QmpEventFrame } from '../contract.js';
import type { QValue } from '../qemu-json/parser.js';
import type { CallWatch } from '../call-watch.js';

/** One connection to the VM's monitor. */
export interface FleetLink {
  readonly monitor: Monitor;
  /** The QMP side with events in wire order; null for a text-only (HMP) monitor, which has no events. */
  readonly qmp: { readonly eventFrames$: Observable<QmpEventFrame> } | null;
  readonly closed: Promise<CloseInfo>;
}

/** Which commands a subject class may run (the sockets' policies: full and read-only). */
export interface CommandPolicy {
  /** Undefined when the command with those arguments may run, else why not. */
  refusal(command: string, args: QValue | undefined): string | undefined;
}

export interface FleetVm {
  /** The VM's name as serve knows it now (it can change once, when QEMU answers query-name). */
  readonly name: string;
  readonly upstream: {
    /** The link now, if the monitor is connected. */
    readonly current: FleetLink | undefined;
    /** Told of every new link. */
    onLink(listener: (link: FleetLink) => void): void;
  };
  /** The policy of `.cmd.` subjects (full) and of `.ro.` subjects (the VM's read-only socket policy). */
  readonly policies: { readonly cmd: CommandPolicy; readonly ro: CommandPolicy };
  /** Told of each command sent for a requester (the command watchdog). */
  readonly watch?: CallWatch;
}
