/**
 * What `qmpx serve` runs: one or more proxied monitors, each an upstream
 * (a monitor socket, or a QEMU it launches) and the downstream sockets it
 * offers. Built from command-line options, from a JSON `--config` file
 * (checked once against lib/proxy/config-schema.ts), or both.
 *
 * Config file shape (every key but `monitors` optional):
 *
 *   {
 *     "logLevel": "info",
 *     "socketMode": "0600",
 *     "maxClientBufferBytes": 8388608,
 *     "audit": { "path": "/var/log/qmpx/audit.ndjson", "arguments": false },
 *     "libvirt": "/run/qmpx/libvirt.sock",
 *     "watchdogSeconds": 10,
 *     "nats": { "servers": "nats://nats1:4222", "host": "hv-1", "jetStream": true },   (lib/nats/config.ts)
 *     "monitors": [
 *       { "name": "vm1", "upstream": "/run/vm1/qmp.sock",
 *         "qmp": "/run/qmpx/vm1.qmp", "hmp": "/run/qmpx/vm1.hmp", "readOnly": "/run/qmpx/vm1.ro" },
 *       { "name": "lab", "launch": { "args": ["-m", "64"], "restart": true },
 *         "qmp": "/run/qmpx/lab.qmp", "socketMode": "0660" }
 *     ]
 *   }
 */
import { readFile } from 'node:fs/promises';
import { QmpxError } from '../errors.js';
import { socketPathProblem } from '../net/listen.js';
import { natsConfigFromFile, type NatsConfig } from '../nats/config.js';
import { readOnlyDenyProblem } from './policy.js';
import { checkedConfigFile, type ConfigFile, type ServeLogLevel, type ValidateSetting } from './config-schema.js';

export type { ServeLogLevel, ValidateSetting } from './config-schema.js';

/** How to start QEMU when the proxy owns it (`--launch`). */
export interface LaunchConfig {
  /** QEMU argv after qmpx's monitor option, verbatim; when empty, the guest-less defaults (`-machine none -nodefaults -display none -S`). */
  args: string[];
  /** QEMU binary; default `qemu-system-x86_64`. */
  binary?: string;
  /** Extra environment for QEMU. */
  env?: Record<string, string>;
  /** Start QEMU again when it exits instead of ending `serve`. */
  restart: boolean;
}

/** One upstream monitor and the sockets that share it. */
export interface MonitorConfig {
  /** Names the VM in logs, audit and the libvirt endpoint; default from `query-name`, else the socket's base name. */
  name?: string;
  /** Exactly one of `upstream` and `launch`. */
  upstream?: string;
  launch?: LaunchConfig;
  /** Downstream QMP socket. */
  qmp?: string;
  /** Downstream text monitor (HMP) socket. */
  hmp?: string;
  /** Downstream QMP socket with the read-only policy. */
  readOnly?: string;
  /** Commands the read-only socket refuses besides the built-in policy's (it can only refuse more). */
  readOnlyDeny?: string[];
  /** 'reject': the QMP sockets refuse arguments QEMU's schema does not take, before they reach QEMU. Default 'off'. */
  validate?: ValidateSetting;
  /**
   * The full-control QMP socket takes the file descriptors clients send
   * with `getfd` / `add-fd` and passes them to QEMU with that command
   * (README, "File descriptors"). Default DEFAULT_ACCEPT_FDS.
   */
  acceptFds?: boolean;
  /** Downstream libvirt RPC socket. */
  libvirt?: string;
  /** Downstream libvirt RPC socket whose connections are all read-only (libvirtd's `libvirt-sock-ro`). */
  libvirtReadOnly?: string;
  /** The VM's guest-agent socket, for libvirt's `qemu-agent-command`. */
  agent?: string;
  /** Permission bits of the sockets created; default 0o600. */
  socketMode: number;
  /** Per-client outbound buffer limit; a client past it is disconnected. */
  maxClientBufferBytes: number;
  /** Described by command-line options (errors name the option), not by a config file's key. */
  fromCommandLine?: boolean;
}

export interface AuditConfig {
  path: string;
  /** Record command arguments too (they may hold secrets). Default false. */
  arguments: boolean;
}

/** The process's own libvirt endpoint: every monitor of `serve` is one of its domains. */
export interface ServeLibvirtConfig {
  path: string;
  socketMode: number;
}

export interface ServeConfig {
  logLevel: ServeLogLevel;
  /** `pretty` (pino-pretty) or JSON lines; `auto` (the default): pretty when stderr is a terminal. */
  logFormat?: 'auto' | 'pretty' | 'json';
  audit?: AuditConfig;
  /** One libvirt RPC socket serving every monitor as a domain (id = its position, from 1). */
  libvirt?: ServeLibvirtConfig;
  /** Clients served at once over every socket, and per socket (README, "Limits"); defaults when absent. */
  maxConnections?: number;
  maxConnectionsPerSocket?: number;
  /** `metrics`: HOST:PORT for Prometheus (lib/proxy/metrics.ts); `control`: the status socket (lib/proxy/control.ts). */
  metrics?: string;
  control?: string;
  /** Warn when QEMU leaves a command unanswered this long (lib/proxy/watchdog.ts); 0 turns the watchdog off. Default DEFAULT_WATCHDOG_SECONDS. */
  watchdogSeconds?: number;
  /** The fleet bridge: events, commands and run states over NATS (lib/nats/config.ts). */
  nats?: NatsConfig;
  monitors: MonitorConfig[];
}

export const DEFAULT_SOCKET_MODE = 0o600;
/**
 * Off by default: reading a socket with recvmsg on libuv poll readiness
 * costs every command, fds or not (BENCHMARKS.md, "File descriptors").
 */
export const DEFAULT_ACCEPT_FDS = false;
export const DEFAULT_MAX_CLIENT_BUFFER_BYTES = 8 * 1024 * 1024;

/** Parses octal text, `"0600"` or `"600"`, into permission bits; throws QmpxError otherwise. */
export function parseSocketMode(mode: string): number {
  if (!/^0?[0-7]{3}$/.test(mode)) throw new QmpxError(`invalid socket mode ${JSON.stringify(mode)}: expected octal permission bits such as 0600`);
  return parseInt(mode, 8);
}

/**
 * A config file's `socketMode`. JSON has no octal numbers, so `440` can only
 * mean decimal 440 (0o670), never what it looks like: a number is refused
 * and the mode must be written as a string of octal digits.
 */
function socketModeOf(mode: string | number, where: string): number {
  if (typeof mode === 'number') {
    const example = /^[0-7]{3}$/.test(String(mode)) ? `0${mode}` : '0640';
    throw new QmpxError(`${where}: socketMode ${mode} is a JSON number, which would be read as decimal; write the mode as a string of octal digits, e.g. "${example}"`);
  }
  return parseSocketMode(mode);
}

/**
 * Validates a parsed config file and fills in defaults. Throws QmpxError
 * naming `source` and what is wrong.
 */
export function configFromJson(json: unknown, source: string, defaults: MonitorDefaults = {}): LoadedConfig {
  const value: ConfigFile = checkedConfigFile(json, source);
  // A monitor's own key, else the command line's when it was given, else the file's top level, else the default.
  const socketMode = defaults.socketMode ?? (value.socketMode === undefined ? DEFAULT_SOCKET_MODE : socketModeOf(value.socketMode, source));
  const maxClientBufferBytes = defaults.maxClientBufferBytes ?? value.maxClientBufferBytes ?? DEFAULT_MAX_CLIENT_BUFFER_BYTES;
  const config: LoadedConfig = {
    logLevel: value.logLevel ?? 'info',
    monitorDefaults: { socketMode, maxClientBufferBytes },
    monitors: value.monitors.map((monitor, index) => ({
      name: monitor.name,
      upstream: monitor.upstream,
      launch: monitor.launch && {
        args: monitor.launch.args ?? [],
        binary: monitor.launch.binary,
        env: monitor.launch.env,
        restart: monitor.launch.restart ?? false,
      },
      qmp: monitor.qmp,
      hmp: monitor.hmp,
      readOnly: monitor.readOnly,
      readOnlyDeny: monitor.readOnlyDeny,
      validate: monitor.validate,
      acceptFds: monitor.acceptFds,
      libvirt: monitor.libvirt,
      libvirtReadOnly: monitor.libvirtReadOnly,
      agent: monitor.agent,
      socketMode: monitor.socketMode === undefined ? socketMode : socketModeOf(monitor.socketMode, `${source}: ${monitor.name ?? `monitor ${index + 1}`}`),
      maxClientBufferBytes: monitor.maxClientBufferBytes ?? maxClientBufferBytes,
    })),
  };
  if (value.audit) config.audit = { path: value.audit.path, arguments: value.audit.arguments ?? false };
  if (value.libvirt !== undefined) config.libvirt = { path: value.libvirt, socketMode };
  if (value.metrics !== undefined) config.metrics = value.metrics;
  if (value.control !== undefined) config.control = value.control;
  if (value.watchdogSeconds !== undefined) config.watchdogSeconds = value.watchdogSeconds;
  if (value.nats !== undefined) config.nats = natsConfigFromFile(value.nats, source);
  if (value.maxConnections !== undefined) config.maxConnections = value.maxConnections;
  if (value.maxConnectionsPerSocket !== undefined) config.maxConnectionsPerSocket = value.maxConnectionsPerSocket;
  checkConfig(config, source);
  return config;
}

/**
 * Settings the command line GAVE (`qmpx serve --socket-mode`,
 * `--max-client-buffer`) for the monitors of a config file that set none of
 * their own; they win over the file's top-level ones. Leave a key out when
 * the user did not give the option, or its default would hide the file's.
 */
export interface MonitorDefaults {
  socketMode?: number;
  maxClientBufferBytes?: number;
}

/** A config file's monitors, plus what applies to a monitor that sets nothing itself (for one given on the command line). */
export interface LoadedConfig extends ServeConfig {
  monitorDefaults: Required<MonitorDefaults>;
}

/** Reads and validates a JSON config file; throws QmpxError on I/O, JSON or shape errors. */
export async function loadConfigFile(path: string, defaults: MonitorDefaults = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new QmpxError(`cannot read config ${path}: ${(error as Error).message}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new QmpxError(`${path}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return configFromJson(value, path, defaults);
}

/**
 * Rules the schema cannot state: every monitor offers at least one socket,
 * no path is used twice (two listeners on one path would replace each
 * other), and every socket path fits a UNIX socket address (a longer one
 * could be created, but no client could connect to it). Throws QmpxError.
 */
export function checkConfig(config: ServeConfig, source: string): void {
  const seen = new Map<string, string>();
  if (config.libvirt !== undefined) {
    const problem = socketPathProblem(config.libvirt.path);
    if (problem !== undefined) throw new QmpxError(`${source}: libvirt socket ${problem}`);
    seen.set(config.libvirt.path, 'the libvirt socket of serve');
  }
  const names = new Set<string>();
  config.monitors.forEach((monitor, index) => {
    const label = monitor.name ?? `monitor ${index + 1}`;
    const denyProblem = readOnlyDenyProblem(monitor.readOnlyDeny ?? []);
    if (denyProblem !== undefined) throw new QmpxError(`${source}: ${label}: ${denyProblem}`);
    if ((monitor.upstream === undefined) === (monitor.launch === undefined)) {
      throw new QmpxError(`${source}: ${label}: give exactly one of upstream and launch`);
    }
    const sockets = { qmp: monitor.qmp, hmp: monitor.hmp, readOnly: monitor.readOnly, libvirt: monitor.libvirt, libvirtReadOnly: monitor.libvirtReadOnly };
    const paths = Object.entries(sockets).filter((entry): entry is [string, string] => entry[1] !== undefined);
    if (paths.length === 0) throw new QmpxError(`${source}: ${label}: no downstream socket (qmp, hmp, readOnly, libvirt or libvirtReadOnly)`);
    if (monitor.agent !== undefined && monitor.libvirt === undefined && monitor.libvirtReadOnly === undefined) {
      throw new QmpxError(`${source}: ${label}: agent is used by the libvirt endpoint only; add libvirt`);
    }
    for (const [kind, path] of paths) {
      const problem = socketPathProblem(path);
      if (problem !== undefined) throw new QmpxError(`${source}: ${label}: ${kind} socket ${problem}`);
    }
    const others: Array<[string, string]> = [];
    if (monitor.upstream) others.push(['upstream', monitor.upstream]);
    if (monitor.agent) others.push(['agent', monitor.agent]);
    for (const [kind, path] of [...paths, ...others]) {
      const other = seen.get(path);
      if (other !== undefined) throw new QmpxError(`${source}: ${label}: ${kind} path ${path} is also ${other}`);
      seen.set(path, `${label} ${kind}`);
    }
    if (monitor.name !== undefined) {
      if (names.has(monitor.name)) throw new QmpxError(`${source}: two monitors are named ${JSON.stringify(monitor.name)}`);
      names.add(monitor.name);
    }
  });
}
