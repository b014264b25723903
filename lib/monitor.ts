/**
 * `connect()`, which opens a connection to a QEMU monitor and decides what it
 * speaks, and `connectAgent()` for a guest agent. What they return is
 * described in lib/contract.ts.
 */
import type net from 'node:net';
import type { GuestAgent, Monitor, MonitorOptions, MonitorProtocol } from './contract.js';
import { checkConnectArguments } from './connect-options.js';
import { ConnectionClosedError, ProtocolError } from './errors.js';
import { describeTarget, openConnection, openSocket, parseTarget, readFirstBytes, type ConnectOptions, type FdPassing } from './transport.js';
import type { QmpMonitor } from './qmp/client.js';
import type { HmpMonitor } from './hmp/client.js';
import type { QgaMonitor } from './qga/client.js';

export type {
  CloseInfo,
  ExecuteOptions,
  GuestAgent,
  HmpOptions,
  Monitor,
  MonitorOptions,
  MonitorProtocol,
  QmpRelay,
  RawCommands,
} from './contract.js';

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
  const { socket, fdPassing } = await openConnection(address, greetingTimeoutMs, options.fdPassing === true);
  try {
    if (protocol === 'qga') return await startGuestAgent(clients.QgaMonitor!, socket, options, address);
    const firstBytes = await readFirstBytes(socket, remainingMs());
    const detected = protocol === 'auto' ? detectProtocol(firstBytes) : protocol;
    if (protocol === 'qmp') refuseHmpBanner(firstBytes);
    if (detected === 'hmp') return await startHumanMonitor(clients.HmpMonitor ?? (await loadHmpClient(socket)), socket, options, firstBytes, remainingMs(), address, fdPassing);
    const monitor = new clients.QmpMonitor!(socket, options, describeTarget(address), fdPassing);
    await monitor.start(firstBytes, remainingMs());
    return monitor;
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** Each client module's import, made once: an import() of a loaded module still resolves afresh each call. */
const clientModules: {
  qmp?: Promise<typeof import('./qmp/client.js')>;
  hmp?: Promise<typeof import('./hmp/client.js')>;
  qga?: Promise<typeof import('./qga/client.js')>;
} = {};

/**
 * The client `protocol` needs, loaded by connect() (for `auto` the QMP one;
 * loadHmpClient() loads the other once a banner shows it is needed): a
 * program that imports the library and never connects loads none.
 */
async function loadClients(protocol: MonitorProtocol | 'auto'): Promise<Clients> {
  if (protocol === 'hmp') return { HmpMonitor: (await (clientModules.hmp ??= import('./hmp/client.js'))).HmpMonitor };
  if (protocol === 'qga') return { QgaMonitor: (await (clientModules.qga ??= import('./qga/client.js'))).QgaMonitor };
  return { QmpMonitor: (await (clientModules.qmp ??= import('./qmp/client.js'))).QmpMonitor };
}

/**
 * The HMP client, for `auto` once the banner has shown the socket is a text
 * monitor: most sockets are QMP, and their connections need not load it.
 * The socket is paused meanwhile; a failure while it loads is held and
 * reported as a failure before the greeting, as readFirstBytes reports one.
 */
async function loadHmpClient(socket: net.Socket): Promise<typeof HmpMonitor> {
  let failure: Error | undefined;
  const holdFailure = (error: Error): void => {
    failure ??= error;
  };
  socket.on('error', holdFailure);
  try {
    const { HmpMonitor: Client } = await (clientModules.hmp ??= import('./hmp/client.js'));
    if (failure !== undefined) throw new ConnectionClosedError(`the monitor connection failed before greeting: ${failure.message}`, { cause: failure });
    return Client;
  } finally {
    socket.off('error', holdFailure);
  }
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
  fdPassing: FdPassing,
): Promise<Monitor> {
  const monitor = new Client(socket, options, describeTarget(address), fdPassing);
  await monitor.start(firstBytes, remainingMs);
  return monitor;
}

/**
 * Connects to a guest agent (qemu-ga) and resolves once it is synchronised:
 * connect() with `protocol: 'qga'`, typed as the GuestAgent it returns.
 * Rejects as connect() does.
 */
export async function connectAgent(target: string | ConnectOptions, options: Omit<MonitorOptions, 'protocol'> = {}): Promise<GuestAgent> {
  const address = parseTarget(target);
  const { QgaMonitor: Client } = await import('./qga/client.js');
  const socket = await openSocket(address, options.greetingTimeoutMs ?? DEFAULT_GREETING_TIMEOUT_MS);
  try {
    return await startGuestAgent(Client, socket, options, address);
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/**
 * Drives a guest agent (lib/qga/client.ts): it sends no greeting, so the
 * session starts by resynchronising, within greetingTimeoutMs.
 */
async function startGuestAgent(Client: typeof QgaMonitor, socket: net.Socket, options: MonitorOptions, address: ConnectOptions): Promise<GuestAgent> {
  const agent = new Client(socket, options, describeTarget(address));
  await agent.start(options.greetingTimeoutMs ?? DEFAULT_GREETING_TIMEOUT_MS);
  return agent;
}
