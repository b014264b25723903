/**
 * The `qmpx serve` process: every configured monitor, the QEMUs it
 * launched, structured logs (pino, JSON lines on stderr), the audit log,
 * and the way it ends.
 *
 * It ends on SIGTERM or SIGINT (stop accepting, let in-flight commands be
 * answered, close everything; status 0), or, for a QEMU it launched without
 * `restart`, when that QEMU exits (status: QEMU's exit code, or 128 + the
 * signal number). Every way of ending removes the sockets and the private
 * directories it made. SIGHUP does not end it: it opens the audit file
 * again at its path, for logrotate.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchQemu, type LaunchedQemu } from '../launch/qemu.js';
import type { Logger } from '../log.js';
import { startLibvirtEndpoint, type InactiveDomain, type LibvirtDomain, type LibvirtEndpoint } from '../rpc/server.js';
import { noAudit, openAuditLog, type AuditSink } from './audit.js';
import type { LaunchConfig, MonitorConfig, ServeConfig } from './config.js';
import { ConnectionLimiter, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_SOCKET } from '../net/connection-limit.js';
import { InputPacer } from './input-pacer.js';
import { MemoryBudget } from '../net/memory-budget.js';
import { defaultControlPath, startControlSocket, statusReader } from './control.js';
import type { BoundSocket } from '../net/listen.js';
import { ServeMetrics } from './metrics.js';
import { MonitorProxy, type MonitorProxyOptions } from './monitor-proxy.js';
import { bothMonitorObservers } from './observer.js';
import { CommandWatchdog, DEFAULT_WATCHDOG_SECONDS } from './watchdog.js';
import { createServeLogger, resolveLogFormat } from './serve-logger.js';
import { checkSocketPlaces } from './socket-place.js';
import { policyNamed } from './policy.js';
import type { FleetVm } from '../nats/fleet-vm.js';
import type { NatsBridge } from '../nats/bridge.js';

/** A started `serve`. */
export interface ServeHandle {
  readonly proxies: readonly MonitorProxy[];
  /** Where GET /metrics is served (with config.metrics). */
  readonly metricsAddress: { host: string; port: number } | undefined;
  /** The control socket `qmpx status` reads. */
  readonly controlPath: string | undefined;
  /** Settles with the exit status once serving has ended and everything is closed. */
  readonly done: Promise<number>;
  /** Opens the audit file again at its path (what SIGHUP does); nothing without an audit file. */
  reopenAudit(): Promise<void>;
  /** Ends serving with `status` (what SIGTERM does with 0). Idempotent. */
  stop(status?: number, reason?: string): Promise<number>;
}

export interface StartServeOptions {
  logger: Logger;
  /** Passed to every MonitorProxy (tests shorten backoffs and grace periods). */
  proxy?: Partial<Pick<MonitorProxyOptions, 'upstream' | 'maxPendingPerClient' | 'maxClientMessageBytes' | 'negotiationTimeoutMs'>>;
  shutdownGraceMs?: number;
}

/** A launched QEMU's exit status as a process exit status. */
function exitStatusOf(exit: { code: number | null; signal: NodeJS.Signals | null }): number {
  if (exit.code !== null) return exit.code;
  return 128 + (exit.signal ? (constants.signals[exit.signal] ?? 0) : 0);
}

/**
 * Starts every monitor of `config`. Rejects (after undoing what was started)
 * if a socket cannot be created or a QEMU cannot be launched.
 */
export async function startServe(config: ServeConfig, options: StartServeOptions): Promise<ServeHandle> {
  const { logger } = options;
  await checkSocketPlaces(config);
  warnOfOpenSocketModes(config, logger);
  const auditLog = config.audit ? openAuditLog(config.audit.path, config.audit.arguments, logger) : undefined;
  const audit: AuditSink = auditLog ?? noAudit;
  const proxies: MonitorProxy[] = [];
  const launchers: QemuSupervisor[] = [];
  let libvirtEndpoint: LibvirtEndpoint | undefined;
  let natsBridge: NatsBridge | undefined;
  // Shared by every monitor: the limits are per process.
  const connections = new ConnectionLimiter(
    {
      maxConnections: config.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      maxConnectionsPerSocket: config.maxConnectionsPerSocket ?? DEFAULT_MAX_CONNECTIONS_PER_SOCKET,
    },
    logger,
  );
  const inputBudget = new MemoryBudget();
  const inputPacer = new InputPacer();
  const metrics = config.metrics === undefined ? undefined : new ServeMetrics();
  let metricsAddress: { host: string; port: number } | undefined;
  let control: BoundSocket | undefined;
  const watchdogMs = (config.watchdogSeconds ?? DEFAULT_WATCHDOG_SECONDS) * 1000;
  const watchdogs: CommandWatchdog[] = [];
  const watchdogOf = new Map<MonitorProxy, CommandWatchdog | undefined>();
  const startedAt = Date.now();
  let finishing: Promise<number> | undefined;
  let resolveDone!: (status: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const stop = (status = 0, reason = 'stopped'): Promise<number> => {
    finishing ??= (async () => {
      logger.info({ reason, status }, 'shutting down');
      await control?.close();
      await natsBridge?.stop();
      await metrics?.close();
      await libvirtEndpoint?.close();
      await Promise.all(proxies.map((proxy) => proxy.stop(options.shutdownGraceMs)));
      await Promise.all(launchers.map((launcher) => launcher.stop()));
      for (const watchdog of watchdogs) watchdog.stop();
      await audit.close();
      connections.close();
      resolveDone(status);
      return status;
    })();
    return finishing;
  };

  try {
    for (const monitor of config.monitors) {
      let upstreamTarget = monitor.upstream;
      let supervisor: QemuSupervisor | undefined;
      if (monitor.launch) {
        supervisor = new QemuSupervisor(monitor.launch, logger, (exit) => void stop(exitStatusOf(exit), 'QEMU exited'));
        launchers.push(supervisor);
        upstreamTarget = await supervisor.start();
      }
      const metricsObserver = metrics?.observer();
      // The watchdog names the monitor as the proxy made below knows it (--name, else query-name).
      const named: { proxy?: MonitorProxy } = {};
      const watchdog = watchdogMs === 0 ? undefined : new CommandWatchdog({ thresholdMs: watchdogMs, logger, monitorName: () => named.proxy?.name ?? '' });
      if (watchdog !== undefined) watchdogs.push(watchdog);
      const observer = metricsObserver && watchdog ? bothMonitorObservers(metricsObserver, watchdog) : (metricsObserver ?? watchdog);
      const proxy = new MonitorProxy({
        config: monitor,
        upstreamTarget: upstreamTarget!,
        logger,
        audit,
        connections,
        inputBudget,
        inputPacer,
        servedOverLibvirt: config.libvirt !== undefined,
        observer,
        ...options.proxy,
      });
      named.proxy = proxy;
      metricsObserver?.attach(proxy, watchdog);
      watchdogOf.set(proxy, watchdog);
      supervisor?.onRestart({ starting: () => proxy.upstream.hold(), started: () => proxy.upstream.release() });
      proxies.push(proxy);
      await proxy.start();
      logger.info(describeMonitor(monitor, proxy), 'serving');
    }
    if (config.libvirt !== undefined) {
      const libvirtAudit = metrics?.auditingLibvirt(audit) ?? audit;
      libvirtEndpoint = await startServeLibvirt(config.libvirt.path, config.libvirt.socketMode, proxies, { logger, audit: libvirtAudit, connections, budget: inputBudget });
      metrics?.observeSharedLibvirt(libvirtEndpoint);
    }
    if (config.nats !== undefined) {
      // Imported here: the NATS client is loaded only by a serve that uses it.
      const { startNatsBridge } = await import('../nats/bridge.js');
      const vms = proxies.map((proxy, index): FleetVm => fleetVm(proxy, config.monitors[index]!));
      natsBridge = await startNatsBridge(config.nats, vms, { logger, audit });
      metrics?.observeNats(natsBridge);
    }
    if (metrics !== undefined) metricsAddress = await metrics.listen(config.metrics!, logger);
    const controlPath = config.control ?? defaultControlPath(config);
    if (controlPath !== undefined) {
      const facts = {
        startedAt,
        libvirt: () => libvirtEndpoint,
        audit: config.audit?.path,
        metrics: metricsAddress && `http://${metricsAddress.host.includes(':') ? `[${metricsAddress.host}]` : metricsAddress.host}:${metricsAddress.port}/metrics`,
      };
      const watched = proxies.map((proxy) => ({ proxy, watchdog: watchdogOf.get(proxy) }));
      control = await startControlSocket(controlPath, statusReader(watched, facts), logger);
    }
  } catch (error) {
    await stop(1, 'start failed');
    throw error;
  }
  const reopenAudit = async (): Promise<void> => {
    if (auditLog === undefined || finishing !== undefined) return;
    await auditLog.reopen();
    logger.info({ audit: config.audit?.path }, 'audit log reopened');
  };
  return { proxies, done, stop, reopenAudit, metricsAddress, controlPath: control?.path };
}

/**
 * A socket any local user may write to hands them the monitor, which can
 * read and change everything of the VM: said once per mode at start, not
 * refused (a host may want it).
 */
function warnOfOpenSocketModes(config: ServeConfig, logger: Logger): void {
  const modes = new Map<number, string[]>();
  for (const monitor of config.monitors) {
    if ((monitor.socketMode & 0o002) !== 0) modes.set(monitor.socketMode, [...(modes.get(monitor.socketMode) ?? []), monitor.name ?? monitor.qmp ?? '']);
  }
  if (config.libvirt !== undefined && (config.libvirt.socketMode & 0o002) !== 0) {
    modes.set(config.libvirt.socketMode, [...(modes.get(config.libvirt.socketMode) ?? []), 'libvirt']);
  }
  for (const [mode, monitors] of modes) {
    const octal = `0${mode.toString(8)}`;
    logger.warn(
      { socketMode: octal, monitors },
      `socket mode ${octal} (--socket-mode / socketMode) is world-writable: every local user can connect and control the VM; 0660 and a group is safer`,
    );
  }
}

/**
 * The libvirt endpoint of the whole process: monitor N of the config (from
 * 1) is domain id N, running while its upstream is up, shut off (listed by
 * `virsh list --all`) while it is not.
 */
async function startServeLibvirt(
  path: string,
  socketMode: number,
  proxies: readonly MonitorProxy[],
  shared: { logger: Logger; audit: AuditSink; connections: ConnectionLimiter; budget: MemoryBudget },
): Promise<LibvirtEndpoint> {
  const served = (): Array<{ active: LibvirtDomain } | { inactive: InactiveDomain }> => proxies.map((proxy, index) => proxy.libvirtDomain(index + 1));
  const endpoint = await startLibvirtEndpoint({
    path,
    socketMode,
    domains: () => served().flatMap((domain) => ('active' in domain ? [domain.active] : [])),
    inactiveDomains: () => served().flatMap((domain) => ('inactive' in domain ? [domain.inactive] : [])),
    logger: shared.logger,
    audit: shared.audit,
    connections: shared.connections,
    budget: shared.budget,
  });
  for (const proxy of proxies) proxy.upstream.onLink(() => endpoint.domainsChanged());
  shared.logger.info({ socket: endpoint.path, kind: 'libvirt', domains: proxies.length }, 'listening');
  return endpoint;
}

/** A monitor as the fleet bridge sees it: `.cmd.` subjects run under the full policy, `.ro.` under its read-only socket's. */
function fleetVm(proxy: MonitorProxy, monitor: MonitorConfig): FleetVm {
  return {
    get name() {
      return proxy.name;
    },
    upstream: proxy.upstream,
    policies: { cmd: policyNamed('full'), ro: policyNamed('read-only', monitor.readOnlyDeny) },
    ...(proxy.callWatch === undefined ? {} : { watch: proxy.callWatch }),
  };
}

function describeMonitor(monitor: MonitorConfig, proxy: MonitorProxy): object {
  return {
    monitor: proxy.name,
    upstream: monitor.upstream ?? 'launched QEMU',
    qmp: monitor.qmp,
    hmp: monitor.hmp,
    readOnly: monitor.readOnly,
    libvirt: monitor.libvirt,
  };
}

/**
 * `qmpx serve`: starts everything, then runs until a signal or a launched
 * QEMU's exit. Resolves with the process exit status.
 */
export async function runServe(config: ServeConfig): Promise<number> {
  const logger = await createServeLogger(config.logLevel, resolveLogFormat(config.logFormat));
  // Handlers go in before start-up: a signal that arrives while sockets are being bound and
  // QEMU launched stops serve as soon as it has started, instead of killing it half set up.
  let handle: ServeHandle | undefined;
  let stopRequested: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (handle === undefined) stopRequested ??= signal;
    else void handle.stop(0, signal);
  };
  // Without a handler SIGHUP (a closed terminal, logrotate's postrotate) would end the process before anything is cleaned up.
  const onHangup = (): void => {
    void handle?.reopenAudit();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHangup);
  try {
    handle = await startServe(config, { logger });
    if (stopRequested !== undefined) void handle.stop(0, stopRequested);
    return await handle.done;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHangup);
  }
}

/** A QEMU that `serve --launch` started, in a private directory, restarted on exit if asked. */
class QemuSupervisor {
  private dir: string | undefined;
  private qemu: LaunchedQemu | undefined;
  private stopping = false;
  private restartListener: { starting(): void; started(): void } | undefined;

  constructor(
    private readonly launch: LaunchConfig,
    private readonly logger: Logger,
    private readonly onFinalExit: (exit: { code: number | null; signal: NodeJS.Signals | null }) => void,
  ) {}

  /** Told before QEMU is started again and once it serves (or failed to start). */
  onRestart(listener: { starting(): void; started(): void }): void {
    this.restartListener = listener;
  }

  /** Launches QEMU; resolves with its QMP socket path. */
  async start(): Promise<string> {
    this.dir = await mkdtemp(join(tmpdir(), 'qmpx-serve-'));
    const qmpPath = join(this.dir, 'qmp.sock');
    await this.spawn(qmpPath);
    return qmpPath;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.qemu?.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  private async spawn(qmpPath: string): Promise<void> {
    const qemu = await launchQemu({
      qmpPath,
      extraArgs: this.launch.args,
      env: this.launch.env,
      binary: this.launch.binary,
    });
    this.qemu = qemu;
    this.logger.info({ qemuPid: qemu.pid, argv: qemu.argv }, 'QEMU launched');
    void qemu.exited.then((exit) => this.onExit(qmpPath, exit));
  }

  private async onExit(qmpPath: string, exit: { code: number | null; signal: NodeJS.Signals | null }): Promise<void> {
    if (this.stopping) return;
    this.logger.warn({ code: exit.code, signal: exit.signal, restart: this.launch.restart }, 'QEMU exited');
    if (!this.launch.restart) {
      this.onFinalExit(exit);
      return;
    }
    this.restartListener?.starting();
    try {
      await this.spawn(qmpPath);
    } catch (error) {
      this.logger.error({ err: (error as Error).message }, 'QEMU could not be started again');
      this.onFinalExit({ code: 1, signal: null });
    } finally {
      this.restartListener?.started();
    }
  }
}
