/**
 * The Monitor: one connection to one QEMU monitor, whatever it speaks, and
 * `connect()`, which opens it and decides what it speaks.
 */
import type net from 'node:net';
import type { Observable } from 'rxjs';
import { checkConnectArguments } from './connect-options.js';
import { ProtocolError } from './errors.js';
import type { Logger } from './log.js';
import type { RequestOrigin } from './request.js';
import type { MonitorState } from './state.js';
import { describeTarget, openSocket, parseTarget, readFirstBytes, type ConnectOptions } from './transport.js';
import type { QmpEvent, QmpGreeting } from './qmp/wire.js';
import type { QmpMonitor } from './qmp/client.js';
import type { HmpMonitor } from './hmp/client.js';
import type { QgaMonitor } from './qga/client.js';

export type MonitorProtocol = 'qmp' | 'hmp' | 'qga';

export interface MonitorOptions {
  /** 'auto' (default): QMP or HMP, decided by the first bytes the monitor sends. */
  protocol?: 'auto' | MonitorProtocol;
  /** Deadline for connecting plus the greeting, in ms. Default 5000. */
  greetingTimeoutMs?: number;
  /** Negotiate out-of-band execution when QEMU offers it. Default true. */
  oob?: boolean;
  /** Largest message accepted from the monitor, in bytes. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Default deadline for every command, in ms. Default: none. */
  commandTimeoutMs?: number;
  /** Put a qmpx id on every command, not just exec-oob (for reading wire traces). Default false. */
  wireIds?: boolean;
  /** In-band commands written before their replies arrive; the rest wait locally. Default 8. */
  maxInFlight?: number;
  /** Where diagnostics go; pino-compatible. Default: warnings and errors to stderr. */
  logger?: Logger;
}

export interface ExecuteOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Send as `exec-oob`; only when OOB was negotiated. */
  oob?: boolean;
  /** Who is asking, for logs and audit. Default: the driver. */
  origin?: RequestOrigin;
}

export interface HmpOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Reject with HmpError when the output is the monitor's error text. Default false. */
  throwOnError?: boolean;
  origin?: RequestOrigin;
}

/** How a connection ended. */
export interface CloseInfo {
  /** True for close(), quit, SHUTDOWN or SIGTERM; false for an unexpected loss. */
  expected: boolean;
  /** What ended it, when it was not close(). */
  cause?: Error;
}

export interface Monitor {
  readonly protocol: MonitorProtocol;
  /** The QMP greeting; null on hmp and qga. */
  readonly greeting: QmpGreeting | null;
  /** Capabilities negotiated; [] on hmp and qga. */
  readonly capabilities: readonly string[];
  /** Every event, in wire order; hot; completes on close. Never emits on hmp. */
  readonly events$: Observable<QmpEvent>;
  /** connecting → negotiating → ready → closed; replays the current state. */
  readonly state$: Observable<MonitorState>;
  /** Messages from the monitor that settled nothing or broke the protocol. */
  readonly protocolErrors$: Observable<ProtocolError>;
  /** Settles once the connection has ended. */
  readonly closed: Promise<CloseInfo>;
  /** Runs a command; resolves with its `return` value, rejects with QmpError on an error reply. */
  execute<T = unknown>(command: string, args?: object, opts?: ExecuteOptions): Promise<T>;
  /** Runs a human-monitor command line and resolves with its text output. */
  hmp(commandLine: string, opts?: HmpOptions): Promise<string>;
  /** Ends the connection; pending requests reject with ConnectionClosedError. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_GREETING_TIMEOUT_MS = 5000;

/**
 * Connects to a monitor and resolves once it is ready for commands.
 *
 * `target` is `'/path/sock'`, `'unix:/path/sock'`, `'tcp:HOST:PORT'` or a
 * ConnectOptions object. Rejects with InvalidArgumentError (a wrong target
 * or option, before anything is opened), ConnectionClosedError (cannot connect),
 * GreetingTimeoutError (no greeting: another client may hold the monitor),
 * ProtocolError (the peer speaks something else) or QmpError (negotiation
 * refused).
 */
export async function connect(target: string | ConnectOptions, options: MonitorOptions = {}): Promise<Monitor> {
  checkConnectArguments(target, options);
  const address = parseTarget(target);
  const protocol = options.protocol ?? 'auto';
  // Loaded before the socket opens: once connected, the socket must not wait on file reads with no error listener.
  const clients = await loadClients(protocol);
  const greetingTimeoutMs = options.greetingTimeoutMs ?? DEFAULT_GREETING_TIMEOUT_MS;
  const startedAt = Date.now();
  const remainingMs = (): number => Math.max(1, greetingTimeoutMs - (Date.now() - startedAt));
  const socket = await openSocket(address, greetingTimeoutMs);
  try {
    if (protocol === 'qga') return await startGuestAgent(clients.QgaMonitor!, socket, options, address);
    const firstBytes = await readFirstBytes(socket, remainingMs());
    const detected = protocol === 'auto' ? detectProtocol(firstBytes) : protocol;
    if (protocol === 'qmp') refuseHmpBanner(firstBytes);
    if (detected === 'hmp') return await startHumanMonitor(clients.HmpMonitor!, socket, options, firstBytes, remainingMs(), address);
    const monitor = new clients.QmpMonitor!(socket, options, describeTarget(address));
    await monitor.start(firstBytes, remainingMs());
    return monitor;
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/**
 * The clients `protocol` may need, loaded by connect(): a program that
 * imports the library and never connects loads none.
 */
async function loadClients(protocol: MonitorProtocol | 'auto'): Promise<Clients> {
  const [qmp, hmp, qga] = await Promise.all([
    protocol === 'qmp' || protocol === 'auto' ? import('./qmp/client.js') : undefined,
    protocol === 'hmp' || protocol === 'auto' ? import('./hmp/client.js') : undefined,
    protocol === 'qga' ? import('./qga/client.js') : undefined,
  ]);
  return { QmpMonitor: qmp?.QmpMonitor, HmpMonitor: hmp?.HmpMonitor, QgaMonitor: qga?.QgaMonitor };
}

interface Clients {
  QmpMonitor?: typeof QmpMonitor;
  HmpMonitor?: typeof HmpMonitor;
  QgaMonitor?: typeof QgaMonitor;
}

/**
 * QMP greets with `{`, the human monitor with its `QEMU ` banner (docs/monitor-facts.md §2, §3).
 * Anything else is not a QEMU monitor.
 */
export function detectProtocol(firstBytes: Buffer): 'qmp' | 'hmp' {
  const text = firstBytes.toString('latin1').trimStart();
  if (text.startsWith('{')) return 'qmp';
  if ('QEMU '.startsWith(text.slice(0, 5)) && text.length > 0) return 'hmp';
  throw new ProtocolError(
    `the peer does not speak a QEMU monitor protocol: expected "{" (QMP) or a "QEMU " banner (HMP), got ${JSON.stringify(text.slice(0, 80))}`,
    text.slice(0, 200),
  );
}

/** `protocol: 'qmp'` on a text monitor would otherwise wait out the greeting deadline. */
function refuseHmpBanner(firstBytes: Buffer): void {
  const text = firstBytes.toString('latin1').trimStart();
  if (!text.startsWith('QEMU ')) return;
  throw new ProtocolError(
    `expected a QMP greeting, got the human monitor's banner ${JSON.stringify(text.slice(0, 80))}: connect with protocol 'hmp' or 'auto'`,
    text.slice(0, 200),
  );
}

/** Drives a raw HMP socket (lib/hmp/client.ts) once its banner and first prompt are in. */
async function startHumanMonitor(
  Client: typeof HmpMonitor,
  socket: net.Socket,
  options: MonitorOptions,
  firstBytes: Buffer,
  remainingMs: number,
  address: ConnectOptions,
): Promise<Monitor> {
  const monitor = new Client(socket, options, describeTarget(address));
  await monitor.start(firstBytes, remainingMs);
  return monitor;
}

/**
 * Drives a guest agent (lib/qga/client.ts): it sends no greeting, so the
 * session starts by resynchronising, within greetingTimeoutMs.
 */
async function startGuestAgent(Client: typeof QgaMonitor, socket: net.Socket, options: MonitorOptions, address: ConnectOptions): Promise<Monitor> {
  const monitor = new Client(socket, options, describeTarget(address));
  await monitor.start(options.greetingTimeoutMs ?? DEFAULT_GREETING_TIMEOUT_MS);
  return monitor;
}
