/**
 * What the proxy reports to an observer (the metrics of `serve --metrics`)
 * as requests settle. Sessions hold it as an optional member of their
 * context: with metrics off nothing is called at all.
 */
import type { AuditSink } from '../audit-sink.js';
import type { UpstreamLink } from './upstream.js';

/** Where a command came from: the kind of downstream socket, or the libvirt endpoint. */
export type CommandOrigin = 'qmp' | 'hmp' | 'read-only' | 'pass-through' | 'libvirt';

/** How a command ended (the audit log's outcomes). */
export type CommandOutcome = 'ok' | 'error' | 'denied' | 'lost' | 'dropped';

/** One monitor's sessions of one socket kind report here. */
export interface SessionObserver {
  /**
   * One command settled. `startedAt` is the performance.now() at which it
   * went upstream, or undefined for one answered here (no round trip).
   */
  commandSettled(command: string, outcome: CommandOutcome, startedAt: number | undefined): void;
  /** A client was disconnected for not reading (its outbound buffer overflowed). */
  slowConsumerDisconnected(): void;
}

/** What one monitor reports (serve --metrics). */
export interface MonitorObserver {
  /** The observer of this monitor's sessions on one kind of socket. */
  session(kind: 'qmp' | 'hmp' | 'read-only'): SessionObserver;
  /** An event QEMU sent, by name. */
  event(name: string): void;
  /** A new upstream link (its command list bounds the command label). */
  linkUp(link: UpstreamLink): void;
  /** The audit sink for this monitor's libvirt endpoints: each call recorded there is counted too. */
  auditingLibvirt(audit: AuditSink): AuditSink;
}
