/**
 * How many clients the process serves at once: a limit per socket, so one
 * socket's clients (a read-only one, say) cannot take every slot, and a
 * limit in total over every socket of every monitor. A connection over
 * either limit is closed at once, before anything is read or written (the
 * client sees its connection accepted and then ended, with no greeting).
 *
 * Refusals come in bursts (a client in a retry loop, a flood), so they are
 * logged once when a burst starts, then as one line with the count of the
 * refusals folded into it when the burst has been quiet for a while.
 */
import type { Logger } from '../log.js';

/** Clients one downstream socket serves at once. */
export const DEFAULT_MAX_CONNECTIONS_PER_SOCKET = 256;
/** Clients the process serves at once, over every socket of every monitor. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** A burst of refusals ends after this long without one; its count is then logged. */
export const REFUSAL_LOG_QUIET_MS = 10_000;

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerSocket: number;
}

interface RefusalBurst {
  folded: number;
  timer: NodeJS.Timeout;
}

export class ConnectionLimiter {
  private total = 0;
  private readonly perSocket = new Map<string, number>();
  private readonly bursts = new Map<string, RefusalBurst>();

  constructor(
    readonly limits: ConnectionLimits,
    private readonly logger: Logger,
  ) {}

  /** Clients admitted and not yet released. */
  get connections(): number {
    return this.total;
  }

  /**
   * Admits one client of socket `path`. Returns the function to call once
   * when that client is gone, or undefined when a limit refuses it (the
   * caller closes the connection; the refusal is logged here).
   */
  admit(path: string): (() => void) | undefined {
    const onSocket = this.perSocket.get(path) ?? 0;
    if (onSocket >= this.limits.maxConnectionsPerSocket || this.total >= this.limits.maxConnections) {
      this.refused(path, onSocket);
      return undefined;
    }
    this.perSocket.set(path, onSocket + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perSocket.get(path) ?? 1) - 1;
      if (left === 0) this.perSocket.delete(path);
      else this.perSocket.set(path, left);
    };
  }

  /** Ends every burst now, logging what they folded (shutdown). */
  close(): void {
    for (const [path, burst] of this.bursts) {
      clearTimeout(burst.timer);
      this.endBurst(path, burst);
    }
  }

  private refused(path: string, onSocket: number): void {
    const burst = this.bursts.get(path);
    if (burst !== undefined) {
      burst.folded++;
      burst.timer.refresh();
      return;
    }
    const limit = onSocket >= this.limits.maxConnectionsPerSocket ? 'per socket' : 'in total';
    this.logger.warn(
      {
        socket: path,
        limit,
        connections: this.total,
        onSocket,
        maxConnections: this.limits.maxConnections,
        maxConnectionsPerSocket: this.limits.maxConnectionsPerSocket,
      },
      `connection refused: ${limit} connection limit reached (further refusals on this socket are counted until ${REFUSAL_LOG_QUIET_MS / 1000} s pass without one)`,
    );
    const started: RefusalBurst = {
      folded: 0,
      timer: setTimeout(() => this.endBurst(path, started), REFUSAL_LOG_QUIET_MS).unref(),
    };
    this.bursts.set(path, started);
  }

  private endBurst(path: string, burst: RefusalBurst): void {
    this.bursts.delete(path);
    if (burst.folded > 0) this.logger.warn({ socket: path, refused: burst.folded }, 'connections refused since the first of the burst');
  }
}
