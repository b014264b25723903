/**
 * `serve --metrics HOST:PORT`: Prometheus text on GET /metrics, from
 * prom-client with a registry of its own (never the process-global one).
 *
 * Counting is done in plain maps by the observers the proxy calls as
 * requests settle (lib/proxy/observer.ts) and handed to prom-client when
 * scraped; gauges (clients, pending, upstream state, taint) are read from
 * the monitors' snapshots at scrape time. Label values are bounded: a
 * command is labelled by its name only when the upstream's `query-commands`
 * lists it, an event by its name for the first MAX_EVENT_NAMES names
 * QEMU sends; everything else is "other". No label ever carries what a
 * client typed.
 */
import { createServer, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditRecord, AuditSink } from '../audit-sink.js';
import { QmpxError } from '../errors.js';
import type { Logger } from '../log.js';
import { CLIENT_KINDS, type ClientKind, type ClientSnapshot, type MonitorSnapshot } from './snapshot.js';
import type { CommandOrigin, CommandOutcome, MonitorObserver, SessionObserver } from './observer.js';
import type { UpstreamLink } from './upstream.js';
import type { WatchdogSnapshot } from './watchdog.js';
import type { NatsBridgeStats } from '../nats/bridge.js';

/** Distinct event names labelled per monitor; further names count as "other". */
export const MAX_EVENT_NAMES = 128;
/** Round-trip buckets, in seconds. */
export const ROUND_TRIP_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

const OTHER = 'other';

/** A monitor whose figures are exported. */
export interface ObservedMonitor {
  /** The monitor's name as currently known (read for every round trip observed: no snapshot is built for it). */
  readonly name: string;
  snapshot(): MonitorSnapshot;
}

/** A monitor's command watchdog, whose figures are exported. */
export interface ObservedWatchdog {
  snapshot(): WatchdogSnapshot;
}

/** A counter rebuilt at each scrape from one map of every monitor's counters, keyed by `label`. */
function perMonitorCounter<Label extends string>(
  name: string,
  help: string,
  label: Label,
  monitors: ReadonlyArray<{ monitor: ObservedMonitor; counters: MonitorCounters }>,
  registers: Registry[],
  counts: (counters: MonitorCounters) => ReadonlyMap<string, number>,
): void {
  new Counter({
    name,
    help,
    labelNames: ['monitor', label],
    registers,
    collect() {
      this.reset();
      for (const { monitor, counters } of monitors) {
        const monitorName = monitor.snapshot().name;
        for (const [key, value] of counts(counters)) this.inc({ monitor: monitorName, [label]: key } as Partial<Record<'monitor' | Label, string>>, value);
      }
    },
  });
}

/** Counts of one monitor, kept by its observers, read at scrape time. */
class MonitorCounters implements MonitorObserver {
  /** Key: origin, command, outcome joined by NUL. */
  readonly commands = new Map<string, number>();
  readonly events = new Map<string, number>();
  readonly slowConsumers = new Map<CommandOrigin, number>();
  /** Until the upstream's list is in: the one command every session answers itself. */
  private knownCommands: ReadonlySet<string> = new Set(['qmp_capabilities']);
  private readonly sessionObservers = new Map<CommandOrigin, SessionObserver>();
  /** Set once the monitor is attached: its name, as currently known. */
  name: () => string = () => '';

  constructor(private readonly roundTrips: Histogram<'monitor' | 'origin'>) {}

  session(kind: 'qmp' | 'hmp' | 'read-only'): SessionObserver {
    let observer = this.sessionObservers.get(kind);
    if (observer === undefined) {
      observer = this.observerFor(kind);
      this.sessionObservers.set(kind, observer);
    }
    return observer;
  }

  event(name: string): void {
    const count = this.events.get(name);
    if (count !== undefined) this.events.set(name, count + 1);
    else if (this.events.size < MAX_EVENT_NAMES) this.events.set(name, 1);
    else this.events.set(OTHER, (this.events.get(OTHER) ?? 0) + 1);
  }

  linkUp(link: UpstreamLink): void {
    if (link.qmp === null) {
      this.knownCommands = new Set(['human-monitor-command']);
      return;
    }
    // Asked at once, so the list is back before any client command that follows on the same link.
    link.monitor.execute<unknown>('query-commands').then(
      (commands) => {
        // Only what QEMU lists as a command name ever becomes a label value.
        if (!Array.isArray(commands)) return;
        const names = commands.map((command: { name?: unknown } | null) => command?.name).filter((name): name is string => typeof name === 'string');
        this.knownCommands = new Set(['qmp_capabilities', ...names]);
      },
      () => undefined,
    );
  }

  auditingLibvirt(audit: AuditSink): AuditSink {
    return {
      get recordsArguments() {
        return audit.recordsArguments;
      },
      record: (entry: AuditRecord) => {
        audit.record(entry);
        this.countLibvirt(entry);
      },
      close: () => audit.close(),
    };
  }

  /** A libvirt call: a monitor command is pass-through, labelled by its QMP command; any other API by its name. */
  countLibvirt(entry: AuditRecord): void {
    if (entry.origin !== 'libvirt') return;
    const passThrough = entry.procedure !== undefined && entry.procedure.startsWith('virDomainQemuMonitorCommand');
    const command = passThrough ? entry.command : /^vir[A-Za-z]+$/.test(entry.procedure ?? '') ? entry.procedure! : OTHER;
    this.count(passThrough ? 'pass-through' : 'libvirt', passThrough ? this.label(command) : command, entry.outcome);
  }

  private observerFor(origin: CommandOrigin): SessionObserver {
    // prom-client hashes a label set on every observe(labels, v); the child of
    // the current set is kept instead and replaced when the monitor is renamed.
    let monitorName: string | undefined;
    let roundTrips: { observe(seconds: number): void } | undefined;
    return {
      commandSettled: (command, outcome, startedAt) => {
        this.count(origin, this.label(command), outcome);
        if (startedAt === undefined) return;
        const name = this.name();
        if (roundTrips === undefined || monitorName !== name) {
          monitorName = name;
          roundTrips = this.roundTrips.labels({ monitor: name, origin });
        }
        roundTrips.observe((performance.now() - startedAt) / 1000);
      },
      commandSent: () => undefined,
      slowConsumerDisconnected: () => this.slowConsumers.set(origin, (this.slowConsumers.get(origin) ?? 0) + 1),
      policyDisconnected: () => undefined,
    };
  }

  private label(command: string): string {
    return this.knownCommands.has(command) ? command : OTHER;
  }

  private count(origin: CommandOrigin, command: string, outcome: CommandOutcome): void {
    const key = `${origin}\0${command}\0${outcome}`;
    this.commands.set(key, (this.commands.get(key) ?? 0) + 1);
  }
}

/** The metrics of one serve process. */
export class ServeMetrics {
  readonly registry = new Registry();
  private readonly monitors: Array<{ monitor: ObservedMonitor; counters: MonitorCounters; watchdog: ObservedWatchdog | undefined }> = [];
  private readonly roundTrips: Histogram<'monitor' | 'origin'>;
  /** serve's own libvirt endpoint (--libvirt), whose clients belong to no one monitor. */
  private readonly sharedLibvirt: Array<{ clients(): ClientSnapshot[] }> = [];
  private server: Server | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'qmpx_' });
    // Gauges named like counters (`_total`), which the text format's rules (promtool check metrics) refuse;
    // the same counts stay exported by type in qmpx_nodejs_active_handles and _requests, and by resource in _resources.
    for (const name of ['qmpx_nodejs_active_handles_total', 'qmpx_nodejs_active_requests_total', 'qmpx_nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    const registers = [this.registry];
    const monitors = this.monitors;
    this.roundTrips = new Histogram({
      name: 'qmpx_command_round_trip_seconds',
      help: 'Time from a command going upstream to its reply, by monitor and origin',
      labelNames: ['monitor', 'origin'],
      buckets: ROUND_TRIP_BUCKETS,
      registers,
    });
    new Counter({
      name: 'qmpx_commands_total',
      help: 'Commands settled, by monitor, origin (qmp, hmp, read-only, pass-through, libvirt), command and outcome',
      labelNames: ['monitor', 'origin', 'command', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const { monitor, counters } of monitors) {
          const name = monitor.snapshot().name;
          for (const [key, value] of counters.commands) {
            const [origin, command, outcome] = key.split('\0') as [string, string, string];
            this.inc({ monitor: name, origin, command, outcome }, value);
          }
        }
      },
    });
    perMonitorCounter('qmpx_events_total', 'Events QEMU sent, by monitor and event name', 'event', monitors, registers, (counters) => counters.events);
    perMonitorCounter(
      'qmpx_slow_consumer_disconnects_total',
      'Clients disconnected for not reading (outbound buffer full), by monitor and socket kind',
      'origin',
      monitors,
      registers,
      (counters) => counters.slowConsumers,
    );
    const snapshots = (): MonitorSnapshot[] => monitors.map(({ monitor }) => monitor.snapshot());
    new Counter({
      name: 'qmpx_upstream_reconnects_total',
      help: 'Upstream links made after the first, by monitor',
      labelNames: ['monitor'],
      registers,
      collect() {
        this.reset();
        for (const snapshot of snapshots()) this.inc({ monitor: snapshot.name }, Math.max(0, snapshot.upstream.links - 1));
      },
    });
    new Gauge({
      name: 'qmpx_upstream_up',
      help: '1 while the upstream monitor is connected, else 0',
      labelNames: ['monitor'],
      registers,
      collect() {
        this.reset();
        for (const snapshot of snapshots()) this.set({ monitor: snapshot.name }, snapshot.upstream.state === 'up' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'qmpx_tainted',
      help: '1 once a raw pass-through command tainted the monitor (custom-monitor), else 0',
      labelNames: ['monitor'],
      registers,
      collect() {
        this.reset();
        for (const snapshot of snapshots()) this.set({ monitor: snapshot.name }, snapshot.tainted ? 1 : 0);
      },
    });
    const sharedLibvirt = this.sharedLibvirt;
    new Gauge({
      name: 'qmpx_clients',
      help: 'Connected clients, by monitor and socket kind (monitor "": serve\'s own libvirt socket, which serves every monitor)',
      labelNames: ['monitor', 'kind'],
      registers,
      collect() {
        this.reset();
        const count = (monitor: string, clients: ClientSnapshot[], kinds: readonly ClientKind[]): void => {
          for (const kind of kinds) this.set({ monitor, kind }, clients.filter((client) => client.kind === kind).length);
        };
        for (const snapshot of snapshots()) count(snapshot.name, snapshot.clients, CLIENT_KINDS);
        for (const endpoint of sharedLibvirt) count('', endpoint.clients(), ['libvirt', 'libvirt-read-only']);
      },
    });
    new Gauge({
      name: 'qmpx_oldest_pending_command_seconds',
      help: 'How long the oldest command of the clients has waited for QEMU\'s answer (0 when none waits), by monitor; absent without the watchdog',
      labelNames: ['monitor'],
      registers,
      collect() {
        this.reset();
        for (const { monitor, watchdog } of monitors) {
          if (watchdog !== undefined) this.set({ monitor: monitor.snapshot().name }, (watchdog.snapshot().oldestPending?.ageMs ?? 0) / 1000);
        }
      },
    });
    new Counter({
      name: 'qmpx_watchdog_stalls_total',
      help: 'Times QEMU left a command unanswered for longer than the watchdog threshold, by monitor',
      labelNames: ['monitor'],
      registers,
      collect() {
        this.reset();
        for (const { monitor, watchdog } of monitors) {
          if (watchdog !== undefined) this.inc({ monitor: monitor.snapshot().name }, watchdog.snapshot().stalls);
        }
      },
    });
    new Gauge({
      name: 'qmpx_pending_commands',
      help: 'Commands received from clients and not yet answered, by monitor',
      labelNames: ['monitor'],
      registers,
      collect() {
        this.reset();
        for (const snapshot of snapshots()) this.set({ monitor: snapshot.name }, snapshot.pending);
      },
    });
  }

  /** A new observer, for the monitor attached to it next (attach), with its watchdog when it has one. */
  observer(): MonitorObserver & { attach(monitor: ObservedMonitor, watchdog?: ObservedWatchdog): void } {
    const counters = new MonitorCounters(this.roundTrips);
    const attach = (monitor: ObservedMonitor, watchdog?: ObservedWatchdog): void => {
      counters.name = () => monitor.name;
      this.monitors.push({ monitor, counters, watchdog });
    };
    return Object.assign(counters, { attach });
  }

  /** The fleet bridge's event counts (serve --nats), read at scrape time. */
  observeNats(bridge: { stats(): NatsBridgeStats }): void {
    const registers = [this.registry];
    const counts: Array<[string, string, (stats: NatsBridgeStats) => number]> = [
      ['qmpx_nats_events_published_total', 'Events NATS took (with JetStream: acknowledged)', (stats) => stats.published],
      ['qmpx_nats_events_while_down_total', 'Events that arrived while NATS was not connected', (stats) => stats.arrivedWhileDown],
      ['qmpx_nats_events_dropped_total', 'Events dropped because the NATS event buffer was full or NATS cannot take them', (stats) => stats.dropped],
    ];
    for (const [name, help, read] of counts) {
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read(bridge.stats())); } });
    }
    new Gauge({ name: 'qmpx_nats_events_buffered', help: 'Events waiting to go to NATS', registers, collect() { this.set(bridge.stats().buffered); } });
    new Gauge({ name: 'qmpx_nats_connected', help: '1 while connected to NATS, else 0', registers, collect() { this.set(bridge.stats().connected ? 1 : 0); } });
  }

  /** serve's own libvirt endpoint, read at scrape time: its clients count under monitor "". */
  observeSharedLibvirt(endpoint: { clients(): ClientSnapshot[] }): void {
    this.sharedLibvirt.push(endpoint);
  }

  /** An audit sink for the process-wide libvirt endpoint: each call is counted for the monitor named in it. */
  auditingLibvirt(audit: AuditSink): AuditSink {
    return {
      get recordsArguments() {
        return audit.recordsArguments;
      },
      record: (entry: AuditRecord) => {
        audit.record(entry);
        this.monitors.find(({ monitor }) => monitor.snapshot().name === entry.monitor)?.counters.countLibvirt(entry);
      },
      close: () => audit.close(),
    };
  }

  /** The exposition text (what GET /metrics answers). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Serves GET /metrics on `address` (HOST:PORT; port 0 picks one). Resolves with the address bound. */
  async listen(address: string, logger: Logger): Promise<{ host: string; port: number }> {
    const { host, port } = parseListenAddress(address);
    const server = createServer((request, response) => {
      if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
        return;
      }
      this.text().then(
        (text) => response.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(new QmpxError(`--metrics ${address}: ${error.message}`)));
      server.listen(port, host, () => resolve());
    });
    const bound = server.address();
    const result = typeof bound === 'object' && bound !== null ? { host: bound.address, port: bound.port } : { host, port };
    logger.info({ metrics: `http://${result.host.includes(':') ? `[${result.host}]` : result.host}:${result.port}/metrics` }, 'serving metrics');
    return result;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** HOST:PORT (HOST may be [v6]); throws QmpxError naming the option otherwise. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port > 65535) throw new QmpxError(`--metrics: expected HOST:PORT (such as 127.0.0.1:9464), got ${JSON.stringify(address)}`);
  return { host: match[1] ?? (match[2] === '' ? '127.0.0.1' : match[2]!), port };
}
