/**
 * What every layer that runs commands for someone reports to the audit log
 * (lib/proxy/audit.ts writes it): the sockets' sessions and the libvirt
 * endpoint's calls alike.
 */

export type AuditOutcome = 'ok' | 'error' | 'denied' | 'lost' | 'dropped';

export interface AuditRecord {
  monitor: string;
  socket: string;
  client: number;
  command: string;
  outcome: AuditOutcome;
  errorClass?: string;
  /** Already-serialised JSON; written only when the log records arguments. */
  argumentsJson?: string;
  /** Where the command came from when not a QMP / HMP socket. */
  origin?: 'libvirt' | 'nats';
  /** A NATS request's reply subject (its requester's inbox). */
  replyTo?: string;
  /** Who a NATS request says it comes from (its Qmpx-Requester header; not vouched for by NATS). */
  requester?: string;
  /** The libvirt API of a libvirt call. */
  procedure?: string;
  /** An HMP command line (already cut to its command words unless arguments are recorded). */
  line?: string;
}

/** Where sessions report what they ran. */
export interface AuditSink {
  readonly recordsArguments: boolean;
  record(entry: AuditRecord): void;
  close(): Promise<void>;
}

/** An audit sink that records nothing. */
export const noAudit: AuditSink = {
  recordsArguments: false,
  record: () => undefined,
  close: async () => undefined,
};
