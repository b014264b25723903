/**
 * The libvirt RPC endpoint on a UNIX socket: what `qmpx serve --libvirt PATH`
 * listens with, so virsh and libvirt-python reach the served monitors.
 *
 *   socket ─▶ RpcConnection (framing, keepalive filter, ≤5 calls at once)
 *               ─▶ Dispatcher ─▶ REMOTE / QEMU program tables ─▶ Monitor
 *   socket ◀─ bounded outbound buffer ◀─ replies, events, PINGs
 *
 * Access is AUTH_NONE, guarded by the socket's permission bits: the socket
 * is created with `socketMode` (default 0600) without a window where it is
 * more open (lib/net/listen.ts binds it in a private directory and renames
 * it into place). With `readOnly`, every connection is read-only, as on
 * libvirtd's `libvirt-sock-ro`: monitor and agent commands and suspend /
 * resume, and monitor-event registration, are refused with libvirt's
 * `operation forbidden: read only access prevents ...`; lookups still work.
 *
 * A client that does not read what it is sent is disconnected with a log
 * line once more than `maxOutboundBytes` wait in its socket buffer.
 *
 * Connections of a read-write endpoint are read with recvmsg
 * (lib/fd/stream.ts) so that the fds virsh `--pass-fds` and
 * `qemuMonitorCommandWithFiles` send reach the call (FD_PASSING answered
 * 1); a read-only endpoint is read by Node, and any fd sent to it is
 * discarded by the kernel.
 */
import type net from 'node:net';
import { defaultLogger, type Logger } from '../log.js';
import type { AuditSink } from '../audit-sink.js';
import type { ConnectionLimiter } from '../net/connection-limit.js';
import { listenPrivately, type AcceptedConnection } from '../net/listen.js';
import type { MemoryBudget } from '../net/memory-budget.js';
import { auditCall } from './call-audit.js';
import { SessionStore } from './client-session.js';
import { RpcConnection } from './connection.js';
import { Dispatcher } from './dispatch.js';
import { DomainRegistry, type InactiveDomain, type LibvirtDomain } from './domains.js';
import { Keepalive, type KeepaliveOptions } from './keepalive.js';
import { LifecycleTracker } from './lifecycle.js';
import { RpcLimit } from './protocol.js';
import { qemuProgram } from './qemu-program.js';
import { remoteProgram } from './remote-program.js';

export type { InactiveDomain, LibvirtDomain } from './domains.js';

/** How long a closed connection's input is drained for the client's EOF (see lib/fd/stream.ts). */
const DRAIN_LINGER_MS = 10_000;
/** fds taken from one read: libvirt sends one per placeholder byte, so a read holds one. */
const MAX_FDS_PER_READ = 16;

/** Default bytes that may wait unsent for one client: two largest messages. */
export const DEFAULT_MAX_OUTBOUND_BYTES = 2 * RpcLimit.MESSAGE_BYTES;
/**
 * Default largest call a client may send: one string at libvirt's string
 * limit (a 4 MiB monitor or agent command, the largest argument of any
 * procedure served here) plus room for the rest of the call. libvirt's own
 * message limit (32 MiB) is what a server may answer with, not what any
 * call served here needs, and a client could make every connection hold it.
 */
export const DEFAULT_MAX_CALL_BYTES = RpcLimit.STRING_BYTES + 64 * 1024;
/**
 * How long a client may leave a message half sent. Idle clients with
 * nothing half sent are never timed out (virsh and libvirt-python sit idle
 * between calls); a client that starts a message and never finishes it
 * would hold its buffer and its connection slot for good. Counted from the
 * first byte of the message, so trickling bytes does not extend it.
 */
export const DEFAULT_PARTIAL_FRAME_TIMEOUT_MS = 60_000;

export interface LibvirtEndpointOptions {
  /** Where to listen. An existing live socket there is an error; a stale one is replaced. */
  path: string;
  /** The served running domains, read on every lookup (a reconnecting upstream hands out its current Monitor). */
  domains: () => readonly LibvirtDomain[];
  /** The served domains without a monitor now (listed shut off by `virsh list --all`); none when absent. */
  inactiveDomains?: () => readonly InactiveDomain[];
  /** Where every call is audited (call-audit.ts); nothing is when absent. */
  audit?: AuditSink;
  /** Refuse monitor / agent commands and suspend / resume on every connection. Default false. */
  readOnly?: boolean;
  /** Where connection-level problems are logged. Default: warnings and errors to stderr. */
  logger?: Logger;
  /** Permission bits of the socket. Default 0o600. */
  socketMode?: number;
  /** Unsent bytes one client may have waiting before it is disconnected. Default 64 MiB. */
  maxOutboundBytes?: number;
  /** Server-side keepalive timing (libvirtd's 5 s / 5 by default). */
  keepalive?: KeepaliveOptions;
  /** Largest call a client may send (header + body). Default DEFAULT_MAX_CALL_BYTES; ceiling 32 MiB. */
  maxCallBytes?: number;
  /** Connection limits shared with the process's other sockets; none when absent. */
  connections?: ConnectionLimiter;
  /** The process-wide pool partial frames are charged to; unbounded when absent. */
  budget?: MemoryBudget;
  /** How long a begun message may stay unfinished before the client is disconnected. Default DEFAULT_PARTIAL_FRAME_TIMEOUT_MS. */
  partialFrameTimeoutMs?: number;
}

/** One connected libvirt client, as `qmpx status` shows it. */
export interface LibvirtClient {
  /** The connection id its log lines carry. */
  id: number;
  kind: 'libvirt' | 'libvirt-read-only';
  socket: string;
  /** ms since the epoch. */
  connectedAt: number;
  /** Who connected, where the listener could tell (SO_PEERCRED). */
  peer?: { pid: number; uid: number; gid: number };
  /** Calls received and not yet answered. */
  pending: number;
}

/** A listening endpoint. */
export interface LibvirtEndpoint {
  readonly path: string;
  /** The clients connected now. */
  clients(): LibvirtClient[];
  /**
   * Tells the endpoint that a domain's monitor changed (an upstream
   * reconnected): monitor-event callbacks move to the current monitors.
   */
  domainsChanged(): void;
  /** Stops listening, disconnects every client, removes the socket file. */
  close(): Promise<void>;
}

/**
 * Listens on `options.path` and serves libvirt's REMOTE, QEMU and KEEPALIVE
 * programs. Rejects with QmpxError when the socket cannot be created (a live
 * server owns the path, it is not a socket, or bind fails).
 */
export async function startLibvirtEndpoint(options: LibvirtEndpointOptions): Promise<LibvirtEndpoint> {
  const logger = options.logger ?? defaultLogger;
  const maxOutboundBytes = options.maxOutboundBytes ?? DEFAULT_MAX_OUTBOUND_BYTES;
  const sessions = new SessionStore(options.readOnly ?? false);
  const domains = new DomainRegistry(options.domains, options.inactiveDomains);
  const lifecycle = new LifecycleTracker(logger);
  const context = { domains, sessions, logger, lifecycle };
  const audit = options.audit;
  const dispatcher = new Dispatcher([remoteProgram(context), qemuProgram(context)], {
    onUnexpectedError: (error, header) => logger.error({ err: error, proc: header.proc, prog: header.prog }, 'libvirt call failed unexpectedly'),
    onCallDone: audit === undefined ? undefined : (report) => auditCall(audit, options.path, report),
  });
  /** Each connected client's socket, and what `clients()` reports of it. */
  const sockets = new Map<net.Socket, { connection: RpcConnection; connectedAt: number; peer: LibvirtClient['peer'] }>();
  const kind = options.readOnly ? 'libvirt-read-only' : 'libvirt';
  let stopping = false;

  const receivesFds = !(options.readOnly ?? false);
  const accept = (accepted: AcceptedConnection): void => {
    const peer = accepted.peer;
    const release = options.connections === undefined ? () => undefined : options.connections.admit(options.path);
    if (release === undefined) {
      accepted.close();
      return;
    }
    const input = receivesFds ? accepted.fdStream({ maxFds: MAX_FDS_PER_READ, lingerMs: DRAIN_LINGER_MS }) : undefined;
    const socket = input?.writer ?? accepted.socket();
    const connection: RpcConnection = new RpcConnection(dispatcher, {
      write(bytes) {
        if (socket.destroyed) return;
        if (socket.writableLength + bytes.length > maxOutboundBytes) {
          logger.warn(
            { connection: connection.id, waitingBytes: socket.writableLength, maxOutboundBytes },
            'libvirt client is not reading its replies and events; disconnecting it',
          );
          ending ??= 'slow consumer';
          connection.close();
          return;
        }
        socket.write(bytes);
        // libvirtd closes the client once CONNECT_CLOSE's reply is out (virNetServerClientDelayedClose).
        if (sessions.of(connection).state === 'closed') socket.end();
      },
      close(error) {
        if (error) logger.warn({ connection: connection.id, reason: error.reason, err: error }, 'libvirt client sent unframeable data; disconnecting it');
        if (error) ending ??= 'policy';
        sessions.end(connection);
        input?.destroy();
        socket.destroy();
      },
      setReading(reading) {
        const source = input ?? socket;
        if (reading) source.resume();
        else source.pause();
      },
      closeFds(fds) {
        input?.closeFds(fds);
      },
    }, { maxMessageBytes: options.maxCallBytes ?? DEFAULT_MAX_CALL_BYTES, budget: options.budget, receivesFds, skipFdPlaceholderBytes: true });
    const client = { kind, socket: options.path, client: connection.id, ...(peer === undefined ? {} : { peer: { pid: peer.pid, uid: peer.uid, gid: peer.gid } }) };
    const connectedAt = Date.now();
    sockets.set(socket, { connection, connectedAt, peer: client.peer });
    let ending: 'slow consumer' | 'policy' | undefined;
    logger.info(client, `client connected on ${kind} socket ${options.path}${peer === undefined ? '' : ` (pid ${peer.pid}, uid ${peer.uid})`}`);
    sessions.of(connection).keepalive = new Keepalive(connection, logger, options.keepalive);
    const partialFrameTimeoutMs = options.partialFrameTimeoutMs ?? DEFAULT_PARTIAL_FRAME_TIMEOUT_MS;
    let partialFrameTimer: NodeJS.Timeout | undefined;
    const armPartialFrameTimer = (): void => {
      const messagesAtStart = connection.messagesReceived;
      partialFrameTimer = setTimeout(() => {
        partialFrameTimer = undefined;
        if (connection.partialInputBytes === 0) return;
        // Messages completed meanwhile: the half-sent one is newer than the timer.
        if (connection.messagesReceived !== messagesAtStart) return armPartialFrameTimer();
        logger.warn(
          { connection: connection.id, partialBytes: connection.partialInputBytes, timeoutMs: partialFrameTimeoutMs },
          'libvirt client left a message unfinished; disconnecting it',
        );
        ending ??= 'policy';
        connection.close();
      }, partialFrameTimeoutMs);
    };
    const onInput = (chunk: Buffer, fds: readonly number[] = []): void => {
      connection.receive(chunk, fds);
      const partial = connection.partialInputBytes > 0;
      if (partial && partialFrameTimer === undefined) {
        armPartialFrameTimer();
      } else if (!partial && partialFrameTimer !== undefined) {
        clearTimeout(partialFrameTimer);
        partialFrameTimer = undefined;
      }
    };
    if (input === undefined) {
      socket.on('data', (chunk: Buffer) => onInput(chunk));
    } else {
      input.attach({ data: (chunk, fds) => onInput(chunk, fds), end: () => socket.end() });
      input.resume();
    }
    socket.on('error', (error) => logger.debug({ connection: connection.id, err: error }, 'libvirt client socket error'));
    socket.on('close', () => {
      clearTimeout(partialFrameTimer);
      release();
      sockets.delete(socket);
      connection.close();
      const reason = ending ?? (stopping ? 'serve stopping' : 'client closed');
      const connectedForMs = Date.now() - connectedAt;
      logger.info({ ...client, reason, connectedForMs }, `client disconnected (${reason}) after ${(connectedForMs / 1000).toFixed(1)} s`);
    });
  };

  const bound = await listenPrivately(accept, options.path, options.socketMode ?? 0o600, logger);
  return {
    path: bound.path,
    clients: () =>
      [...sockets.values()].map(({ connection, connectedAt, peer }): LibvirtClient => ({
        id: connection.id,
        kind,
        socket: options.path,
        connectedAt,
        ...(peer === undefined ? {} : { peer }),
        pending: connection.callsInFlight,
      })),
    domainsChanged: () => {
      sessions.reattachAll();
      lifecycle.sync(domains.all(), true);
    },
    async close(): Promise<void> {
      stopping = true;
      lifecycle.close();
      const closing = bound.close();
      for (const socket of sockets.keys()) socket.destroy();
      await closing;
    },
  };
}
