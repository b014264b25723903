/**
 * serve's control socket: what `qmpx status` reads. A client connects,
 * writes one line (`status`), and gets one JSON line back (ServeStatus),
 * then the connection ends. The socket is created like the downstream
 * sockets (lib/net/listen.ts) with mode 0600 whatever --socket-mode says:
 * it shows every client and command count of every monitor.
 *
 * Default path: the first socket of the first monitor (or serve's libvirt
 * socket) with `.control` appended.
 */
import net from 'node:net';
import type { Logger } from '../log.js';
import { listenPrivately, type BoundSocket } from '../net/listen.js';
import type { ServeConfig } from './config.js';
import type { MonitorProxy } from './monitor-proxy.js';
import type { ClientSnapshot, MonitorSnapshot } from './snapshot.js';
import type { UpstreamLink } from './upstream.js';
import type { WatchdogSnapshot } from './watchdog.js';

export const CONTROL_SOCKET_MODE = 0o600;
export const CONTROL_SUFFIX = '.control';
/** How long status waits for each QEMU's query-status before calling it not answering. */
export const RUN_STATE_TIMEOUT_MS = 500;
/** A request line longer than this ends the connection. */
const MAX_REQUEST_BYTES = 256;

/** The run state as `query-status` gave it, or why there is none. */
export type RunStateReport = { status: string; running: boolean } | { unavailable: 'upstream down' | 'not answering' | 'no query-status' };

export interface MonitorStatus extends MonitorSnapshot {
  runState: RunStateReport;
  /** The command watchdog's view; null when it is off (--watchdog 0). */
  watchdog: WatchdogSnapshot | null;
}

export interface ServeStatus {
  pid: number;
  /** ms since the epoch. */
  startedAt: number;
  audit: string | null;
  metrics: string | null;
  monitors: MonitorStatus[];
  /** serve's own libvirt endpoint (--libvirt), serving every monitor; null without one. */
  libvirt: { socket: string; clients: ClientSnapshot[] } | null;
}

/** What the control socket reads of a libvirt endpoint (lib/rpc/server.ts offers it). */
export interface LibvirtClientSource {
  readonly path: string;
  clients(): ClientSnapshot[];
}

/** Where the control socket goes when --control is not given; undefined when serve has no socket at all. */
export function defaultControlPath(config: ServeConfig): string | undefined {
  const first = config.monitors[0];
  const socket = first && (first.qmp ?? first.readOnly ?? first.hmp ?? first.libvirt ?? first.libvirtReadOnly);
  const path = socket ?? config.libvirt?.path;
  return path === undefined ? undefined : `${path}${CONTROL_SUFFIX}`;
}

/** A monitor `qmpx status` shows, with its watchdog when it has one. */
export interface WatchedMonitor {
  proxy: MonitorProxy;
  watchdog: { snapshot(): WatchdogSnapshot } | undefined;
}

/**
 * What `status` answers, for `monitors`. Each monitor's run state is asked
 * with one `query-status` at a time: a QEMU that does not answer (stopped)
 * is not sent another for every status request, which it would all answer
 * at once when it runs again; while the watchdog reports it stalled, none
 * is sent at all.
 */
export function statusReader(
  monitors: readonly WatchedMonitor[],
  facts: { startedAt: number; audit: string | undefined; metrics: string | undefined; libvirt?: () => LibvirtClientSource | undefined },
): () => Promise<ServeStatus> {
  const asking = new Map<MonitorProxy, { link: UpstreamLink; reply: Promise<RunStateReport> }>();

  const ask = (proxy: MonitorProxy, link: UpstreamLink): Promise<RunStateReport> => {
    const current = asking.get(proxy);
    if (current !== undefined && current.link === link) return current.reply;
    const reply = link.monitor.execute<{ status: string; running: boolean }>('query-status').then(
      (value): RunStateReport => ({ status: value.status, running: value.running }),
      (): RunStateReport => ({ unavailable: 'no query-status' }),
    );
    const entry = { link, reply };
    asking.set(proxy, entry);
    void reply.then(() => {
      if (asking.get(proxy) === entry) asking.delete(proxy);
    });
    return reply;
  };

  const runStateOf = async ({ proxy, watchdog }: WatchedMonitor): Promise<RunStateReport> => {
    const link = proxy.upstream.current;
    if (link === undefined) return { unavailable: 'upstream down' };
    if (watchdog?.snapshot().stalled === true) return { unavailable: 'not answering' };
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<RunStateReport>((resolve) => (timer = setTimeout(() => resolve({ unavailable: 'not answering' }), RUN_STATE_TIMEOUT_MS)));
    try {
      return await Promise.race([ask(proxy, link), late]);
    } finally {
      clearTimeout(timer);
    }
  };

  return async () => {
    const statuses = await Promise.all(
      monitors.map(async (monitor): Promise<MonitorStatus> => {
        const runState = await runStateOf(monitor);
        return { ...monitor.proxy.snapshot(), runState, watchdog: monitor.watchdog?.snapshot() ?? null };
      }),
    );
    const libvirt = facts.libvirt?.();
    return {
      pid: process.pid,
      startedAt: facts.startedAt,
      audit: facts.audit ?? null,
      metrics: facts.metrics ?? null,
      monitors: statuses,
      libvirt: libvirt === undefined ? null : { socket: libvirt.path, clients: libvirt.clients() },
    };
  };
}

/** Listens on `path` and answers `status` with `status()`. */
export async function startControlSocket(path: string, status: () => Promise<ServeStatus>, logger: Logger): Promise<BoundSocket> {
  const server = net.createServer((socket) => {
    let request = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      request += chunk;
      const newline = request.indexOf('\n');
      if (newline < 0) {
        if (request.length > MAX_REQUEST_BYTES) socket.destroy();
        return;
      }
      socket.pause();
      const word = request.slice(0, newline).trim();
      if (word !== 'status') {
        socket.end(`${JSON.stringify({ error: `unknown request ${JSON.stringify(word.slice(0, 40))}; the control socket answers "status"` })}\n`);
        return;
      }
      status().then(
        (value) => socket.end(`${JSON.stringify(value)}\n`),
        (error: unknown) => socket.end(`${JSON.stringify({ error: String(error) })}\n`),
      );
    });
  });
  const bound = await listenPrivately(server, path, CONTROL_SOCKET_MODE, logger);
  logger.info({ socket: path, kind: 'control' }, 'listening');
  return bound;
}
