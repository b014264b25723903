/**
 * `qmpx serve`: share one QEMU monitor among many downstream clients.
 *
 *   qmpx serve (--upstream SOCKET | --launch [-- QEMU ARGS...]) --qmp PATH [--hmp PATH]
 *              [--read-only PATH] [--libvirt PATH] [--libvirt-read-only PATH] [--agent SOCKET]
 *              [--name NAME] [--config FILE] [--nats URL [--nats-host NAME] [--nats-jetstream] [--nats-creds FILE]]
 *   qmpx serve --config FILE --libvirt PATH     one libvirt socket for every monitor of FILE
 *
 * Runs until SIGTERM/SIGINT (exit 0), or with --launch until QEMU exits
 * (exit with QEMU's status) unless --restart is given.
 */
import { Command, InvalidArgumentError, Option } from './commander.js';
import { QmpxError } from '../errors.js';
import {
  DEFAULT_MAX_CLIENT_BUFFER_BYTES,
  DEFAULT_SOCKET_MODE,
  checkConfig,
  loadConfigFile,
  parseSocketMode,
  type MonitorConfig,
  type MonitorDefaults,
  type ServeConfig,
  type ServeLogLevel,
} from '../proxy/config.js';
import { runServe } from '../proxy/daemon.js';
import { DEFAULT_WATCHDOG_SECONDS } from '../proxy/watchdog.js';
import { DEFAULT_RUN_STATE_BUCKET, checkNatsConfig, eventStreamConfig, natsConfigFromServers, type NatsConfig } from '../nats/config.js';
import { collectEnv } from './common.js';

/** The options commander hands to the action. */
export interface ServeCliOptions {
  upstream?: string;
  launch?: boolean;
  restart?: boolean;
  qemuBinary?: string;
  env?: Record<string, string>;
  qmp?: string;
  hmp?: string;
  readOnly?: string;
  readOnlyDeny?: string;
  validate?: boolean;
  acceptFds?: boolean;
  libvirt?: string;
  libvirtReadOnly?: string;
  agent?: string;
  name?: string;
  config?: string;
  socketMode?: number;
  maxClientBuffer?: number;
  maxConnections?: number;
  maxConnectionsPerSocket?: number;
  audit?: string;
  auditArguments?: boolean;
  logLevel?: ServeLogLevel;
  metrics?: string;
  control?: string;
  logFormat?: 'auto' | 'pretty' | 'json';
  watchdog?: number;
  nats?: string;
  natsHost?: string;
  natsJetstream?: boolean;
  natsCreds?: string;
}

const LOG_LEVELS: ServeLogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** The `serve` subcommand, ready for `program.addCommand()`. */
export function serveCommand(): Command {
  return new Command('serve')
    .description('share one QEMU monitor with many QMP, HMP and read-only clients')
    .usage('(--upstream SOCKET | --launch) --qmp PATH [options] [-- QEMU ARGS...]')
    .option('--upstream <socket>', 'the QEMU monitor to share: PATH, unix:PATH or tcp:HOST:PORT')
    .option('--launch', 'start QEMU and share its monitor: guest-less by default, or with the QEMU arguments given after --')
    .option('--restart', 'with --launch: start QEMU again when it exits, instead of ending')
    .option('--qemu-binary <path>', 'with --launch: the QEMU binary (default qemu-system-x86_64)')
    .option('--env <name=value>', "with --launch: set a variable in QEMU's environment (repeatable)", collectEnv)
    .option('--qmp <path>', 'downstream QMP socket')
    .option('--hmp <path>', 'downstream text monitor (HMP) socket')
    .option('--read-only <path>', 'downstream QMP socket that allows only query-* and other read-only commands')
    .option('--read-only-deny <commands>', 'comma-separated commands the read-only socket refuses besides its built-in policy')
    .option('--validate', "the QMP sockets refuse arguments QEMU's schema does not take, with QEMU's error, before they reach QEMU")
    .option('--accept-fds', 'the QMP socket takes the file descriptors clients send with getfd / add-fd and passes them to QEMU with that command')
    .option('--libvirt <path>', 'libvirt RPC socket (virsh): with --upstream / --launch this monitor\'s; with only --config, one for every monitor of the file')
    .option('--libvirt-read-only <path>', 'downstream libvirt RPC socket on which every connection is read-only')
    .option('--agent <socket>', "the VM's guest-agent socket, for virsh qemu-agent-command through the libvirt sockets")
    .option('--name <name>', 'the VM name for logs, audit and libvirt (default: query-name, else the socket name)')
    .option('--config <file>', 'JSON config file with several monitors (see the README)')
    .addOption(
      new Option('--socket-mode <mode>', 'permission bits of the downstream sockets')
        .default(DEFAULT_SOCKET_MODE, '0600')
        .argParser(parseModeArgument),
    )
    .addOption(
      new Option('--max-client-buffer <bytes>', 'per-client outbound buffer; a client that falls further behind is disconnected')
        .default(DEFAULT_MAX_CLIENT_BUFFER_BYTES, '8 MiB')
        .argParser(parseByteCount),
    )
    .option('--max-connections <n>', 'clients served at once over every socket (default 1024); more are closed at once', parseConnectionCount)
    .option('--max-connections-per-socket <n>', 'clients served at once on one socket (default 256)', parseConnectionCount)
    .option('--audit <file>', 'append an NDJSON audit record per command to FILE')
    .option('--audit-arguments', 'include command arguments in the audit log')
    .option('--metrics <host:port>', 'serve Prometheus metrics on http://HOST:PORT/metrics')
    .option('--watchdog <seconds>', `warn when QEMU leaves a command unanswered this long (default ${DEFAULT_WATCHDOG_SECONDS}; 0: off)`, parseWatchdogSeconds)
    .option('--control <path>', "the control socket `qmpx status` reads (mode 0600; default: the first socket's path + .control)")
    .option('--nats <url>', 'publish events and answer commands over NATS (nats://[USER:PASSWORD@]HOST:PORT, comma-separated servers)')
    .option('--nats-host <name>', 'the host name in NATS subjects (default: this machine\'s host name)')
    .option('--nats-jetstream', 'keep events in a JetStream stream (published with acks) and run states in a key-value bucket')
    .option('--nats-creds <file>', 'a NATS credentials file (JWT and nkey seed)')
    .addOption(new Option('--log-level <level>', 'log level (logs go to stderr)').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--log-format <format>', 'pretty (readable) or json lines; auto: pretty on a terminal').choices(['auto', 'pretty', 'json']).default('auto'))
    .argument('[qemu-args...]', 'with --launch: QEMU arguments after --, replacing the guest-less defaults')
    .action(async (qemuArgs: string[], options: ServeCliOptions, command: Command) => {
      try {
        const config = await buildServeConfig(options, qemuArgs, command);
        process.exitCode = await runServe(config);
      } catch (error) {
        process.stderr.write(`qmpx serve: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      }
    });
}

/**
 * Merges the command line and the config file: the flags describe one
 * monitor (when --upstream or --launch is given), the file any number more;
 * --log-level and --audit given on the command line win over the file.
 * A monitor's socket mode and client buffer come from its own key, else
 * --socket-mode / --max-client-buffer when GIVEN, else the file's top-level
 * key, else the default. Throws QmpxError on contradictions.
 */
export async function buildServeConfig(options: ServeCliOptions, qemuArgs: string[], command?: Command): Promise<ServeConfig> {
  if (options.readOnlyDeny !== undefined && options.upstream === undefined && !options.launch) throw new QmpxError('--read-only-deny goes with --upstream or --launch');
  if (options.validate && options.upstream === undefined && !options.launch) throw new QmpxError('--validate goes with --upstream or --launch');
  if (options.acceptFds && options.upstream === undefined && !options.launch) throw new QmpxError('--accept-fds goes with --upstream or --launch');
  const explicit = (name: string): boolean => command === undefined || command.getOptionValueSource(name) === 'cli';
  // Commander fills in an option's default: passed on, it would hide the file's top-level value.
  const given: MonitorDefaults = {
    socketMode: explicit('socketMode') ? options.socketMode : undefined,
    maxClientBufferBytes: explicit('maxClientBuffer') ? options.maxClientBuffer : undefined,
  };
  const fromFile = options.config === undefined ? undefined : await loadConfigFile(options.config, given);
  if (options.upstream !== undefined && options.launch) throw new QmpxError('give either --upstream or --launch, not both');
  if (qemuArgs.length > 0 && !options.launch) throw new QmpxError(`QEMU arguments (${qemuArgs.join(' ')}) are only taken with --launch`);
  if ((options.restart || options.qemuBinary !== undefined || options.env !== undefined) && !options.launch) {
    throw new QmpxError('--restart, --qemu-binary and --env go with --launch');
  }
  const monitors: MonitorConfig[] = [...(fromFile?.monitors ?? [])];
  if (options.upstream !== undefined || options.launch) {
    monitors.push({
      name: options.name,
      upstream: options.upstream,
      launch: options.launch ? { args: qemuArgs, binary: options.qemuBinary, env: options.env, restart: options.restart ?? false } : undefined,
      qmp: options.qmp,
      hmp: options.hmp,
      readOnly: options.readOnly,
      readOnlyDeny: options.readOnlyDeny?.split(',').filter((name) => name !== ''),
      validate: options.validate ? 'reject' : undefined,
      acceptFds: options.acceptFds,
      libvirt: options.libvirt,
      libvirtReadOnly: options.libvirtReadOnly,
      agent: options.agent,
      socketMode: given.socketMode ?? fromFile?.monitorDefaults.socketMode ?? DEFAULT_SOCKET_MODE,
      maxClientBufferBytes: given.maxClientBufferBytes ?? fromFile?.monitorDefaults.maxClientBufferBytes ?? DEFAULT_MAX_CLIENT_BUFFER_BYTES,
      fromCommandLine: true,
    });
  } else if (fromFile === undefined) {
    throw new QmpxError('nothing to serve: give --upstream SOCKET or --launch (with --qmp PATH), or --config FILE');
  } else if (
    [options.qmp, options.hmp, options.readOnly, options.libvirtReadOnly, options.agent, options.name].some((value) => value !== undefined)
  ) {
    throw new QmpxError('--qmp, --hmp, --read-only, --libvirt-read-only, --agent and --name describe the monitor of --upstream or --launch');
  }
  // Without a monitor of its own on the command line, --libvirt is the whole process's socket.
  const serveLibvirt =
    options.libvirt !== undefined && options.upstream === undefined && !options.launch
      ? { path: options.libvirt, socketMode: given.socketMode ?? fromFile?.monitorDefaults.socketMode ?? DEFAULT_SOCKET_MODE }
      : fromFile?.libvirt;
  const config: ServeConfig = {
    logLevel: fromFile && !explicit('logLevel') ? fromFile.logLevel : (options.logLevel ?? 'info'),
    monitors,
  };
  if (options.logFormat !== undefined && options.logFormat !== 'auto') config.logFormat = options.logFormat;
  const audit = options.audit !== undefined ? { path: options.audit, arguments: options.auditArguments ?? false } : fromFile?.audit;
  if (audit) config.audit = audit;
  const metrics = options.metrics ?? fromFile?.metrics;
  if (metrics !== undefined) config.metrics = metrics;
  const control = options.control ?? fromFile?.control;
  if (control !== undefined) config.control = control;
  const watchdogSeconds = options.watchdog ?? fromFile?.watchdogSeconds;
  if (watchdogSeconds !== undefined) config.watchdogSeconds = watchdogSeconds;
  if (serveLibvirt !== undefined) config.libvirt = serveLibvirt;
  const maxConnections = options.maxConnections ?? fromFile?.maxConnections;
  if (maxConnections !== undefined) config.maxConnections = maxConnections;
  const maxConnectionsPerSocket = options.maxConnectionsPerSocket ?? fromFile?.maxConnectionsPerSocket;
  if (maxConnectionsPerSocket !== undefined) config.maxConnectionsPerSocket = maxConnectionsPerSocket;
  const nats = natsConfigOf(options, fromFile?.nats);
  if (nats !== undefined) config.nats = nats;
  checkConfig(config, options.config ?? 'the command line');
  return config;
}

/** --nats replaces the file's servers and credentials; --nats-host, --nats-jetstream and --nats-creds change either. */
function natsConfigOf(options: ServeCliOptions, fromFile: NatsConfig | undefined): NatsConfig | undefined {
  let config = fromFile;
  if (options.nats !== undefined) {
    const fromUrl = natsConfigFromServers(options.nats, '--nats');
    config = { ...fromFile, ...fromUrl };
    if (fromFile !== undefined && (fromUrl.user !== undefined || fromUrl.token !== undefined)) delete config.credentials;
  }
  const refining = options.natsHost !== undefined || options.natsJetstream === true || options.natsCreds !== undefined;
  if (config === undefined) {
    if (refining) throw new QmpxError('--nats-host, --nats-jetstream and --nats-creds go with --nats (or a config file with a nats key)');
    return undefined;
  }
  if (options.natsHost !== undefined) config.host = options.natsHost;
  if (options.natsCreds !== undefined) config.credentials = options.natsCreds;
  if (options.natsJetstream === true) {
    config.jetStream ??= eventStreamConfig();
    config.runStateBucket ??= DEFAULT_RUN_STATE_BUCKET;
  }
  checkNatsConfig(config, options.nats !== undefined ? '--nats' : (options.config ?? 'the config file'));
  return config;
}

function parseModeArgument(value: string): number {
  try {
    return parseSocketMode(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function parseWatchdogSeconds(value: string): number {
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 0) throw new InvalidArgumentError(`expected seconds (0 or more, such as 10 or 2.5), got ${JSON.stringify(value)}`);
  return seconds;
}

function parseConnectionCount(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new InvalidArgumentError(`expected a positive whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function parseByteCount(value: string): number {
  const match = /^(\d+)([KMG]i?B?)?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`expected a byte count such as 1048576 or 8MiB, got ${JSON.stringify(value)}`);
  const unit = (match[2] ?? '').charAt(0).toUpperCase();
  const factor = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1;
  const bytes = Number(match[1]) * factor;
  if (bytes < 1024) throw new InvalidArgumentError('the client buffer must be at least 1024 bytes');
  return bytes;
}
