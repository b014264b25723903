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
import { TimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import { listenPrivately, type BoundSocket } from '../net/listen.js';
import type { ServeConfig } from './config.js';
import type { MonitorProxy } from './monitor-proxy.js';
import type { MonitorSnapshot } from './snapshot.js';

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
}

export interface ServeStatus {
  pid: number;
  /** ms since the epoch. */
  startedAt: number;
  audit: string | null;
  metrics: string | null;
  /** Peer credentials of clients: Node gives no SO_PEERCRED, so they are not known. */
  peerCredentials: 'unknown';
  monitors: MonitorStatus[];
}

/** Where the control socket goes when --control is not given; undefined when serve has no socket at all. */
export function defaultControlPath(config: ServeConfig): string | undefined {
  const first = config.monitors[0];
  const socket = first && (first.qmp ?? first.readOnly ?? first.hmp ?? first.libvirt ?? first.libvirtReadOnly);
  const path = socket ?? config.libvirt?.path;
  return path === undefined ? undefined : `${path}${CONTROL_SUFFIX}`;
}

async function runStateOf(proxy: MonitorProxy): Promise<RunStateReport> {
  const link = proxy.upstream.current;
  if (link === undefined) return { unavailable: 'upstream down' };
  try {
    const reply = await link.monitor.execute<{ status: string; running: boolean }>('query-status', undefined, { timeoutMs: RUN_STATE_TIMEOUT_MS });
    return { status: reply.status, running: reply.running };
  } catch (error) {
    return { unavailable: error instanceof TimeoutError ? 'not answering' : 'no query-status' };
  }
}

/** Everything `qmpx status` shows. */
export async function serveStatus(
  proxies: readonly MonitorProxy[],
  facts: { startedAt: number; audit: string | undefined; metrics: string | undefined },
): Promise<ServeStatus> {
  const monitors = await Promise.all(
    proxies.map(async (proxy): Promise<MonitorStatus> => {
      const runState = await runStateOf(proxy);
      return { ...proxy.snapshot(), runState };
    }),
  );
  return { pid: process.pid, startedAt: facts.startedAt, audit: facts.audit ?? null, metrics: facts.metrics ?? null, peerCredentials: 'unknown', monitors };
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
