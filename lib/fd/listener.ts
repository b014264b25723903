/**
 * A listening unix stream socket accepted through the C library, so that
 * every connection is handed over as a bare fd (qmpx decides per socket
 * whether Node reads it or `recvmsg` does) together with the peer's
 * credentials (SO_PEERCRED: the pid, uid and gid of the process that
 * connected).
 *
 * Readiness comes from FdPoll; each readiness accepts every pending
 * connection (accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC, so nothing leaks
 * into a QEMU that serve launches).
 *
 * Out of fds (EMFILE / ENFILE) the pending connection would keep the socket
 * readable and the level-triggered poll would spin. Instead one spare fd,
 * held for the purpose, is closed, the connection is accepted into its
 * place and closed at once (the client sees EOF rather than hanging), and
 * the spare is taken again. When even that fails the poll rests for
 * ACCEPT_RETRY_MS before trying again.
 */
import { openSync, closeSync } from 'node:fs';
import { accept, bindUnix, close, listen, peerCredentials, SystemCallError, unixSocket } from './libc.js';
import { FdPoll, READABLE } from './poll.js';

/** The process on the other end of an accepted unix connection. */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** Connections the kernel queues before accept; what Node's listen() uses. */
export const LISTEN_BACKLOG = 511;
/** How long accepting rests when no fd can be had even for the spare. */
export const ACCEPT_RETRY_MS = 100;

export interface FdListenerHandlers {
  /** A new connection: `fd` is the caller's to use and close. */
  accepted(fd: number, peer: PeerCredentials | undefined): void;
  /** accept4 failed for want of fds (EMFILE / ENFILE): `shed` connections were closed unserved. */
  outOfFds(code: string, shed: number): void;
}

let spareFd: number | undefined;

function takeSpare(): void {
  if (spareFd !== undefined) return;
  try {
    spareFd = openSync('/dev/null', 'r');
  } catch {
    spareFd = undefined;
  }
}

function releaseSpare(): boolean {
  if (spareFd === undefined) return false;
  closeSync(spareFd);
  spareFd = undefined;
  return true;
}

export class FdListener {
  private readonly poll: FdPoll;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  /** Binds a new socket at `path` and listens; throws SystemCallError. */
  constructor(
    path: string,
    private readonly handlers: FdListenerHandlers,
  ) {
    const fd = unixSocket();
    try {
      bindUnix(fd, path);
      listen(fd, LISTEN_BACKLOG);
      this.poll = new FdPoll(fd, () => this.acceptPending());
    } catch (error) {
      close(fd);
      throw error;
    }
    takeSpare();
    this.poll.start(READABLE);
  }

  get fd(): number {
    return this.poll.fd;
  }

  /** Stops accepting and closes the listening fd (the socket file is the caller's). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.poll.close();
    close(this.poll.fd);
  }

  private acceptPending(): void {
    while (!this.closed) {
      let fd: number;
      try {
        fd = accept(this.poll.fd);
      } catch (error) {
        if (error instanceof SystemCallError && (error.code === 'EMFILE' || error.code === 'ENFILE')) return this.shed(error.code);
        // ECONNABORTED and the like concern one connection that is already gone.
        if (error instanceof SystemCallError && error.code === 'ECONNABORTED') continue;
        throw error;
      }
      if (fd < 0) return;
      let peer: PeerCredentials | undefined;
      try {
        peer = peerCredentials(fd);
      } catch {
        peer = undefined;
      }
      this.handlers.accepted(fd, peer);
    }
  }

  /** Out of fds: drop waiting connections through the spare fd, or rest a while. */
  private shed(code: string): void {
    let shed = 0;
    while (releaseSpare()) {
      let fd = -1;
      try {
        fd = accept(this.poll.fd);
      } catch {
        fd = -1;
      }
      if (fd >= 0) {
        close(fd);
        shed++;
      }
      takeSpare();
      if (fd < 0) break;
    }
    this.handlers.outOfFds(code, shed);
    if (spareFd !== undefined && shed > 0) return;
    // No spare (or nothing taken with it): stop the level-triggered poll from spinning.
    this.poll.stop();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      takeSpare();
      this.poll.start(READABLE);
    }, ACCEPT_RETRY_MS);
  }
}
