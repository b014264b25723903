/**
 * What the proxy reports to its observers (the metrics of `serve --metrics`,
 * the command watchdog) as requests go upstream and settle. Sessions hold
 * one as an optional member of their context: with nothing observing,
 * nothing is called at all.
 */
import type { AuditSink } from '../audit-sink.js';
import type { CallWatch } from '../call-watch.js';
import type { UpstreamLink } from './upstream.js';

/** Where a command came from: the kind of downstream socket, or the libvirt endpoint. */
export type CommandOrigin = 'qmp' | 'hmp' | 'read-only' | 'pass-through' | 'libvirt';

/** How a command ended (the audit log's outcomes). */
export type CommandOutcome = 'ok' | 'error' | 'denied' | 'lost' | 'dropped';

/** Why the proxy ended a client's connection itself, for the disconnect log line. */
export type PolicyDisconnect = 'oversized message' | 'input memory spent' | 'no capabilities negotiated in time';

/** One monitor's sessions of one socket kind report here. */
export interface SessionObserver {
  /** A command went upstream at `startedAt` (performance.now()); commandSettled() follows with the same `startedAt`. */
  commandSent(command: string, startedAt: number): void;
  /**
   * One command settled. `startedAt` is the performance.now() at which it
   * went upstream, or undefined for one answered here (no round trip).
   */
  commandSettled(command: string, outcome: CommandOutcome, startedAt: number | undefined): void;
  /** A client was disconnected for not reading (its outbound buffer overflowed). */
  slowConsumerDisconnected(): void;
  /** A client was disconnected for breaking a limit. */
  policyDisconnected(why: PolicyDisconnect): void;
}

/** What one monitor reports (serve --metrics, the watchdog). */
export interface MonitorObserver {
  /** The observer of this monitor's sessions on one kind of socket. */
  session(kind: 'qmp' | 'hmp' | 'read-only'): SessionObserver;
  /** An event QEMU sent, by name. */
  event(name: string): void;
  /** A new upstream link (its command list bounds the command label). */
  linkUp(link: UpstreamLink): void;
  /** The audit sink for this monitor's libvirt endpoints: each call recorded there is counted too. */
  auditingLibvirt(audit: AuditSink): AuditSink;
  /** Told of the monitor commands of libvirt clients and NATS requesters, which come through no session. */
  readonly calls?: CallWatch;
}

/** Every report goes to `first`, then to `second`. */
export function bothSessionObservers(first: SessionObserver, second: SessionObserver): SessionObserver {
  return {
    commandSent(command, startedAt) {
      first.commandSent(command, startedAt);
      second.commandSent(command, startedAt);
    },
    commandSettled(command, outcome, startedAt) {
      first.commandSettled(command, outcome, startedAt);
      second.commandSettled(command, outcome, startedAt);
    },
    slowConsumerDisconnected() {
      first.slowConsumerDisconnected();
      second.slowConsumerDisconnected();
    },
    policyDisconnected(why) {
      first.policyDisconnected(why);
      second.policyDisconnected(why);
    },
  };
}

/** A monitor observer that reports to `first` and then to `second`. */
export function bothMonitorObservers(first: MonitorObserver, second: MonitorObserver): MonitorObserver {
  const sessions = new Map<string, SessionObserver>();
  return {
    session(kind) {
      let observer = sessions.get(kind);
      if (observer === undefined) {
        observer = bothSessionObservers(first.session(kind), second.session(kind));
        sessions.set(kind, observer);
      }
      return observer;
    },
    event(name) {
      first.event(name);
      second.event(name);
    },
    linkUp(link) {
      first.linkUp(link);
      second.linkUp(link);
    },
    auditingLibvirt: (audit) => second.auditingLibvirt(first.auditingLibvirt(audit)),
    ...bothCallWatches(first.calls, second.calls),
  };
}

function bothCallWatches(first: CallWatch | undefined, second: CallWatch | undefined): { calls?: CallWatch } {
  if (first === undefined || second === undefined) {
    const only = first ?? second;
    return only === undefined ? {} : { calls: only };
  }
  return {
    calls: {
      callSent(command) {
        const firstSettled = first.callSent(command);
        const secondSettled = second.callSent(command);
        return (answered) => {
          firstSettled(answered);
          secondSettled(answered);
        };
      },
    },
  };
}

/** Why a client's connection ended, as its disconnect log line says. */
export type DisconnectReason = 'client closed' | 'slow consumer' | 'policy' | 'upstream lost' | 'serve stopping';

/**
 * The observer of one session: reports to `inner` (when something observes
 * the monitor) and tells `ending` when the proxy disconnects the client
 * itself, and why.
 */
export function sessionObserverFor(inner: SessionObserver | undefined, ending: (reason: 'slow consumer' | 'policy', detail?: PolicyDisconnect) => void): SessionObserver {
  return {
    commandSent: (command, startedAt) => inner?.commandSent(command, startedAt),
    commandSettled: (command, outcome, startedAt) => inner?.commandSettled(command, outcome, startedAt),
    slowConsumerDisconnected() {
      ending('slow consumer');
      inner?.slowConsumerDisconnected();
    },
    policyDisconnected(why) {
      ending('policy', why);
      inner?.policyDisconnected(why);
    },
  };
}
