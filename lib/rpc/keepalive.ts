/**
 * The KEEPALIVE program (virkeepalive.c): PING and PONG, both type MESSAGE,
 * serial 0, status OK, empty body, never dispatched like calls (libvirt
 * installs keepalive as a message filter, and so does this).
 *
 * - A PING from the client is answered with a PONG at once, whether or not
 *   keepalive was negotiated (virsh sends its own PINGs, mitm-ev).
 * - Once the client asks CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE) the
 *   server pings it too, as libvirtd does: after `intervalMs` without any
 *   message from the client a PING goes out; after `maxMissed` PINGs in a
 *   row without any message back, the client is dead and is disconnected
 *   with a log line. libvirtd's defaults are 5 s and 5.
 */
import type { Logger } from '../log.js';
import type { MessageFilter, RpcConnection } from './connection.js';
import { KeepaliveProc, MessageStatus, MessageType, RPC_PROTOCOL_VERSION, RpcProgram } from './protocol.js';

export interface KeepaliveOptions {
  /** Idle time before the server pings, ms. Default 5000 (libvirtd's keepalive_interval). */
  intervalMs?: number;
  /** Unanswered PINGs before disconnecting. Default 5 (libvirtd's keepalive_count). */
  maxMissed?: number;
}

export const DEFAULT_KEEPALIVE_INTERVAL_MS = 5000;
export const DEFAULT_KEEPALIVE_MAX_MISSED = 5;

/** The header of a keepalive message. */
export function keepaliveHeader(proc: number): {
  prog: number;
  vers: number;
  proc: number;
  type: number;
  serial: number;
  status: number;
} {
  return { prog: RpcProgram.KEEPALIVE, vers: RPC_PROTOCOL_VERSION, proc, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK };
}

/** Keepalive for one connection: the filter answering PINGs, and the optional server-side pinger. */
export class Keepalive {
  readonly intervalMs: number;
  readonly maxMissed: number;
  private lastHeardAt = Date.now();
  private missed = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly connection: RpcConnection,
    private readonly logger: Logger,
    options: KeepaliveOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
    this.maxMissed = options.maxMissed ?? DEFAULT_KEEPALIVE_MAX_MISSED;
    connection.addMessageFilter(this.filter);
    connection.signal.addEventListener('abort', () => this.stop(), { once: true });
  }

  /** Any message proves the client alive; KEEPALIVE messages are consumed here. */
  private readonly filter: MessageFilter = (message, connection) => {
    this.lastHeardAt = Date.now();
    this.missed = 0;
    if (message.header.prog !== RpcProgram.KEEPALIVE) return false;
    if (message.header.type === MessageType.MESSAGE && message.header.proc === KeepaliveProc.PING) {
      connection.send(keepaliveHeader(KeepaliveProc.PONG));
    }
    return true;
  };

  /** Whether the server pings this client (after it asked for PROGRAM_KEEPALIVE). */
  get pinging(): boolean {
    return this.timer !== null;
  }

  /** Starts pinging; idempotent; a no-op once the connection closed. */
  start(): void {
    if (this.timer || this.connection.state !== 'open') return;
    this.lastHeardAt = Date.now();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops pinging (the connection closed). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    if (Date.now() - this.lastHeardAt < this.intervalMs) return;
    if (this.missed >= this.maxMissed) {
      this.logger.warn(
        { connection: this.connection.id, missed: this.missed, intervalMs: this.intervalMs },
        'libvirt client did not answer keepalive; disconnecting',
      );
      this.stop();
      this.connection.close();
      return;
    }
    this.missed++;
    this.connection.send(keepaliveHeader(KeepaliveProc.PING));
  }
}
