/**
 * One proxied monitor: the upstream link, the downstream sockets that share
 * it, and the sessions on them.
 *
 *                     ┌─▶ QMP socket ──────▶ QmpSession ×N ─┐
 *   Upstream (link) ──┼─▶ read-only socket ▶ QmpSession ×N ─┼── events fanned out in wire order
 *                     ├─▶ HMP socket ──────▶ HmpSession ×N ─┘
 *                     └─▶ libvirt socket ──▶ lib/rpc endpoint (one domain: this VM, on the current link)
 *
 * Events are parsed once by the link and delivered to every negotiated
 * client as they are read, as replies are handed to their sessions
 * (QmpMonitor.sendWithCallback), so each client sees events and its replies
 * in QEMU's order. Nothing waits for a
 * client: a slow one overflows its own bounded buffer and is disconnected.
 */
import { createHash } from 'node:crypto';
import { basename, extname } from 'node:path';
import type { CallWatch } from '../call-watch.js';
import type { Logger } from '../log.js';
import { startLibvirtEndpoint, type InactiveDomain, type LibvirtDomain, type LibvirtEndpoint } from '../rpc/server.js';
import type { AuditSink } from './audit.js';
import { DEFAULT_ACCEPT_FDS, type MonitorConfig } from './config.js';
import { HmpSession } from './hmp-session.js';
import type { ConnectionLimiter } from '../net/connection-limit.js';
import type { InputPacer } from './input-pacer.js';
import { listenPrivately, type AcceptedConnection, type BoundSocket } from '../net/listen.js';
import { END_LINGER_MS } from './outbound.js';
import { MAX_FDS_PER_COMMAND } from './client-fds.js';
import type { MemoryBudget } from '../net/memory-budget.js';
import { isTainted } from '../passthrough/taint.js';
import { sessionObserverFor, type MonitorObserver } from './observer.js';
import { logClientConnected } from './serve-logger.js';
import { EventRate, type EndpointKind, type MonitorSnapshot } from './snapshot.js';
import { policyNamed, type PolicyName } from './policy.js';
import { QmpSession } from './qmp-session.js';
import { answersWritten, DEFAULT_MAX_PENDING_PER_CLIENT, type DownstreamSession, type SessionContext } from './session.js';
import { MonitorClients, type ClientRecord } from './monitor-clients.js';
import { Upstream, type UpstreamLink, type UpstreamOptions } from './upstream.js';

export type { EndpointKind } from './snapshot.js';

/** How long stop() lets in-flight commands finish before closing their clients. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5000;
/** After the grace period, how long the error replies to what is still pending may take to be written. */
export const SHUTDOWN_ANSWER_WRITE_MS = 1000;

export interface MonitorProxyOptions {
  config: MonitorConfig;
  /** The upstream socket (for --launch, the one QEMU was started with). */
  upstreamTarget: string;
  logger: Logger;
  audit: AuditSink;
  /** Overrides for the upstream connection (backoff, timeouts). */
  upstream?: Partial<UpstreamOptions>;
  maxPendingPerClient?: number;
  maxClientMessageBytes?: number;
  /** Connection limits shared by every monitor of the process; none when absent. */
  connections?: ConnectionLimiter;
  /** The process-wide pool for clients' unfinished input; unbounded when absent. */
  inputBudget?: MemoryBudget;
  /** See SessionContext.negotiationTimeoutMs. */
  negotiationTimeoutMs?: number;
  /** See SessionContext.inputPacer. */
  inputPacer?: InputPacer;
  /** The process's own libvirt endpoint serves this VM too: look up its uuid even without a libvirt socket of its own. */
  servedOverLibvirt?: boolean;
  /** Told of commands, events and links (serve --metrics); nothing is when absent. */
  observer?: MonitorObserver;
}


export class MonitorProxy {
  readonly upstream: Upstream;
  private readonly sessions = new Set<DownstreamSession>();
  private readonly bound: BoundSocket[] = [];
  private nameValue: string | undefined;
  private readonly fallbackName: string;
  private readonly libvirtEndpoints: LibvirtEndpoint[] = [];
  /** QEMU's -uuid, when it has one (query-uuid answers all zeros otherwise). */
  private uuid: string | undefined;
  private stopping = false;
  private readonly clients = new MonitorClients();
  private readonly events = new EventRate();

  constructor(private readonly options: MonitorProxyOptions) {
    const { config } = options;
    this.nameValue = config.name;
    const namingPath = config.upstream ?? config.qmp ?? config.hmp ?? config.readOnly ?? config.libvirt ?? 'qemu';
    this.fallbackName = basename(namingPath, extname(namingPath));
    this.upstream = new Upstream({
      target: options.upstreamTarget,
      label: config.name ?? this.fallbackName,
      logger: options.logger,
      checkArguments: (config.validate ?? 'off') === 'reject',
      // The libvirt endpoint passes the fds of qemuMonitorCommandWithFiles; a QMP socket with acceptFds its clients'.
      fdPassing: acceptsFds(config) || config.libvirt !== undefined || options.servedOverLibvirt === true,
      ...options.upstream,
    });
    this.upstream.onLink((link) => this.onLink(link));
  }

  /** The monitor as it is now. */
  snapshot(): MonitorSnapshot {
    const link = this.upstream.current;
    const clients = this.clients.snapshots();
    let pending = this.pendingCount;
    // The libvirt endpoints keep their own connections; their clients and calls are this VM's too.
    for (const endpoint of this.libvirtEndpoints) {
      for (const client of endpoint.clients()) {
        clients.push(client);
        pending += client.pending;
      }
    }
    const version = link?.qmp?.greeting?.QMP.version.qemu;
    return {
      name: this.name,
      upstream: {
        target: this.options.upstreamTarget,
        state: this.upstream.state,
        since: this.upstream.stateSince,
        links: this.upstream.linkCount,
        protocol: link === undefined ? undefined : link.qmp === null ? 'hmp' : 'qmp',
      },
      qemuVersion: version === undefined ? undefined : `${version.major}.${version.minor}.${version.micro}`,
      tainted: link !== undefined && isTainted(link.monitor),
      clients,
      pending,
      eventsTotal: this.events.total,
      eventsPerSecond: this.events.perSecond(),
    };
  }

  /** The VM's name: --name, else what query-name said, else the socket's base name. */
  get name(): string {
    return this.nameValue ?? this.fallbackName;
  }

  /** Connected downstream sessions (for diagnostics and tests). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** What watches the monitor commands that come through no session (libvirt calls, NATS requests): the watchdog's. */
  get callWatch(): CallWatch | undefined {
    return this.options.observer?.calls;
  }

  /** Downstream requests not yet answered, over all sessions. */
  get pendingCount(): number {
    let count = 0;
    for (const session of this.sessions) count += session.pendingCount;
    return count;
  }

  /** Starts the upstream and listens on every configured socket; rejects (and cleans up) if a socket cannot be created. */
  async start(): Promise<void> {
    const { config } = this.options;
    const endpoints: Array<[EndpointKind, string | undefined]> = [
      ['qmp', config.qmp],
      ['read-only', config.readOnly],
      ['hmp', config.hmp],
    ];
    try {
      for (const [kind, path] of endpoints) if (path !== undefined) await this.listen(kind, path);
      for (const [path, readOnly] of [
        [config.libvirt, false],
        [config.libvirtReadOnly, true],
      ] as const) {
        if (path === undefined) continue;
        const endpoint = await startLibvirtEndpoint({
          path,
          domains: () => this.libvirtDomains(),
          inactiveDomains: () => {
            const domain = this.libvirtDomain(1);
            return 'inactive' in domain ? [domain.inactive] : [];
          },
          readOnly,
          logger: this.options.logger,
          socketMode: config.socketMode,
          audit: this.options.observer?.auditingLibvirt(this.options.audit) ?? this.options.audit,
          connections: this.options.connections,
          budget: this.options.inputBudget,
        });
        this.libvirtEndpoints.push(endpoint);
        this.options.logger.info({ monitor: this.name, socket: path, kind: readOnly ? 'libvirt-read-only' : 'libvirt' }, 'listening');
      }
    } catch (error) {
      await Promise.all([...this.bound, ...this.libvirtEndpoints].map((socket) => socket.close()));
      this.bound.length = 0;
      this.libvirtEndpoints.length = 0;
      throw error;
    }
    this.upstream.start();
  }

  /**
   * What the libvirt endpoint serves: this VM while its upstream is up, by
   * its name, QEMU's uuid (or one derived from the name when QEMU has
   * none), id 1, on the current link's monitor.
   */
  private libvirtDomains(): LibvirtDomain[] {
    const link = this.upstream.current;
    if (link === undefined) return [];
    const domain: LibvirtDomain = { name: this.name, uuid: this.uuid ?? uuidFromName(this.name), id: 1, monitor: link.monitor };
    if (this.options.config.agent !== undefined) domain.agentPath = this.options.config.agent;
    if (this.callWatch !== undefined) domain.watch = this.callWatch;
    return [domain];
  }

  /**
   * This VM as domain `id` of a libvirt endpoint: running on the current
   * link, else shut off (name and uuid only).
   */
  libvirtDomain(id: number): { active: LibvirtDomain } | { inactive: InactiveDomain } {
    const uuid = this.uuid ?? uuidFromName(this.name);
    const link = this.upstream.current;
    if (link === undefined) return { inactive: { name: this.name, uuid, id } };
    const domain: LibvirtDomain = { name: this.name, uuid, id, monitor: link.monitor };
    if (this.options.config.agent !== undefined) domain.agentPath = this.options.config.agent;
    if (this.callWatch !== undefined) domain.watch = this.callWatch;
    return { active: domain };
  }

  /**
   * Stops accepting, lets what clients already sent be answered (up to
   * `graceMs`), then closes the upstream: every command still pending (QEMU
   * stopped, or slow) is answered with the upstream-loss error reply, as
   * when the monitor goes away, never with a bare EOF. Clients still
   * connected once those answers are written (or after
   * SHUTDOWN_ANSWER_WRITE_MS) are closed.
   */
  async stop(graceMs = DEFAULT_SHUTDOWN_GRACE_MS): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.events.stop();
    await Promise.all([...this.bound, ...this.libvirtEndpoints].map((socket) => socket.close()));
    for (const session of this.sessions) session.stopReading();
    await this.settled(graceMs);
    const greeted = [...this.sessions].filter((session) => session.link !== undefined);
    // Ending the link makes each session answer what it holds and end its connection (upstreamLost).
    await this.upstream.stop();
    await answersWritten(greeted, SHUTDOWN_ANSWER_WRITE_MS);
    for (const session of this.sessions) session.destroy();
  }

  private async listen(kind: EndpointKind, path: string): Promise<void> {
    this.bound.push(await listenPrivately((connection) => this.accept(kind, path, connection), path, this.options.config.socketMode, this.options.logger));
    this.options.logger.info({ monitor: this.name, socket: path, kind }, 'listening');
  }

  private accept(kind: EndpointKind, path: string, connection: AcceptedConnection): void {
    const peer = connection.peer;
    if (this.stopping) {
      connection.close();
      return;
    }
    const { connections } = this.options;
    const release = connections === undefined ? () => undefined : connections.admit(path);
    if (release === undefined) {
      connection.close();
      return;
    }
    const client: ClientRecord = { kind, socket: path, connectedAt: Date.now(), peer };
    const policy: PolicyName = kind === 'read-only' ? 'read-only' : 'full';
    const context: SessionContext = {
      endpoint: path,
      policy: policyNamed(policy, this.options.config.readOnlyDeny),
      logger: this.options.logger,
      audit: this.options.audit,
      monitorName: () => this.name,
      maxBufferedBytes: this.options.config.maxClientBufferBytes,
      maxPendingCommands: this.options.maxPendingPerClient ?? DEFAULT_MAX_PENDING_PER_CLIENT,
      maxMessageBytes: this.options.maxClientMessageBytes,
      inputBudget: this.options.inputBudget,
      negotiationTimeoutMs: this.options.negotiationTimeoutMs,
      inputPacer: this.options.inputPacer,
      observer: sessionObserverFor(this.options.observer?.session(kind), (reason, detail) => {
        client.ending ??= reason;
        client.endingDetail ??= detail;
      }),
    };
    const session = this.sessionFor(kind, connection, context);
    this.sessions.add(session);
    this.clients.add(session, client);
    const disconnected = logClientConnected(this.options.logger, { monitor: this.name, kind, socket: path, client: session.id, peer });
    void session.closed.then(() => {
      release();
      this.sessions.delete(session);
      this.clients.delete(session);
      disconnected(client.ending ?? (this.stopping ? 'serve stopping' : 'client closed'), client.endingDetail);
    });
    const link = this.upstream.current;
    if (link) this.greet(session, link);
    // Otherwise the client waits ungreeted, as on QEMU's own busy socket, until onLink().
  }

  /**
   * The session of a new client. Only the full-control QMP socket reads
   * with recvmsg to take the fds clients send, and only with acceptFds;
   * everywhere else Node reads and the kernel discards any fd sent.
   * Half-open: a client that sends its commands and shuts down its side
   * still gets the answers.
   */
  private sessionFor(kind: EndpointKind, connection: AcceptedConnection, context: SessionContext): DownstreamSession {
    if (kind === 'hmp') return new HmpSession(connection.socket({ allowHalfOpen: true }), context);
    if (kind === 'qmp' && acceptsFds(this.options.config)) {
      const input = connection.fdStream({ maxFds: MAX_FDS_PER_COMMAND, lingerMs: END_LINGER_MS });
      return new QmpSession(input.writer, context, input);
    }
    return new QmpSession(connection.socket({ allowHalfOpen: true }), context);
  }

  private greet(session: DownstreamSession, link: UpstreamLink): void {
    if (session.protocol === 'qmp' && link.qmp === null) {
      this.options.logger.warn(
        { monitor: this.name, client: session.id },
        'the upstream speaks only the human monitor; QMP clients cannot be served',
      );
      this.clients.markEnding(session, 'policy');
      session.destroy();
      return;
    }
    session.greet(link);
  }

  private onLink(link: UpstreamLink): void {
    this.options.observer?.linkUp(link);
    if (link.qmp !== null) {
      const { observer } = this.options;
      const subscription = link.qmp.eventFrames$.subscribe((frame) => {
        this.events.total++;
        observer?.event(frame.event.event);
        const line = `${frame.text}\r\n`;
        for (const session of this.sessions) if (session.link === link) session.deliverEvent(line);
      });
      // Runs after every pending request's rejection: those are handed to their sessions before the link's promise settles.
      void link.closed.then(() => {
        subscription.unsubscribe();
        for (const session of this.sessions) if (session.link === link) this.upstreamLost(session);
      });
      if (this.nameValue === undefined) void this.lookUpName(link);
      if (this.libvirtEndpoints.length > 0 || this.options.servedOverLibvirt) void this.lookUpUuid(link);
    } else {
      void link.closed.then(() => {
        for (const session of this.sessions) if (session.link === link) this.upstreamLost(session);
      });
    }
    for (const session of this.sessions) if (session.link === undefined) this.greet(session, link);
    for (const endpoint of this.libvirtEndpoints) endpoint.domainsChanged();
  }

  private upstreamLost(session: DownstreamSession): void {
    this.clients.markEnding(session, this.stopping ? 'serve stopping' : 'upstream lost');
    session.upstreamLost();
  }

  /** Without --name the VM is named by `query-name` (QEMU's -name), else by the socket. */
  private async lookUpName(link: UpstreamLink): Promise<void> {
    try {
      const reply = await link.monitor.execute<{ name?: string }>('query-name');
      if (typeof reply.name === 'string' && reply.name !== '' && this.nameValue === undefined) {
        this.nameValue = reply.name;
        this.options.logger.info({ monitor: this.name }, 'named by query-name');
      }
    } catch {
      // An upstream that cannot answer keeps the socket's name.
    }
  }

  private async lookUpUuid(link: UpstreamLink): Promise<void> {
    try {
      const reply = await link.monitor.execute<{ UUID?: string }>('query-uuid');
      if (typeof reply.UUID === 'string' && !/^[0-]*$/.test(reply.UUID)) this.uuid = reply.UUID;
    } catch {
      // Without query-uuid the name-derived uuid stays.
    }
  }

  /** Resolves once no session has a request pending, or after `graceMs`. */
  private async settled(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.pendingCount > 0 && Date.now() < deadline) {
      const pending = [...this.sessions].filter((session) => session.pendingCount > 0);
      await Promise.race([
        Promise.all(pending.map((session) => session.closed)),
        new Promise((resolve) => setTimeout(resolve, 20)),
      ]);
    }
  }
}

/** Whether the monitor's full-control QMP socket takes the fds clients send (`acceptFds`, default DEFAULT_ACCEPT_FDS). */
function acceptsFds(config: MonitorConfig): boolean {
  return config.acceptFds ?? DEFAULT_ACCEPT_FDS;
}

/** A stable uuid for a VM QEMU gave none (`-uuid`): the name's SHA-1, shaped as an RFC 4122 name-based uuid. */
function uuidFromName(name: string): string {
  const bytes = createHash('sha1').update(`qmpx:${name}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
