/**
 * A connected unix stream socket whose input may carry file descriptors.
 *
 * Node's own reads discard SCM_RIGHTS fds (the kernel closes them), so the
 * input side is read here with recvmsg on FdPoll readiness, and each chunk
 * is handed over with the fds that came with it. The output side stays
 * Node's: `writer` is a `net.Socket` over a duplicate of the fd, created
 * not readable so Node never reads (one fd, one libuv handle each).
 *
 *   open ──peer's EOF / read error──▶ input ended (writer still usable)
 *     └──writer ended──▶ draining: input read and discarded (fds closed)
 *                           until the peer's EOF or `lingerMs` ──▶ closed
 *   destroy(), or the writer destroyed ─────────────────────────────▶ closed
 *
 * Draining after the writer closes keeps the peer from seeing ECONNRESET
 * instead of the last answers: Linux resets a unix peer whose data was
 * left unread at close.
 */
import net from 'node:net';
import { closeAll, close, duplicate, receiveWithFds, SystemCallError } from './libc.js';
import { DISCONNECT, FdPoll, READABLE } from './poll.js';

/** Bytes asked of one recvmsg (what Node reads at a time on a unix socket). */
export const READ_CHUNK_BYTES = 64 * 1024;

export interface FdStreamListener {
  /** Bytes the peer sent, with the fds that arrived with them (now the listener's to close) and whether the kernel dropped more than `maxFds`. */
  data(chunk: Buffer, fds: number[], truncated: boolean): void;
  /** No more input: the peer ended its side or the connection failed. */
  end(): void;
}

export interface FdStreamOptions {
  /** Most fds taken from one read; more are closed by the kernel and reported as truncated. */
  maxFds: number;
  /** How long input is drained after the writer has closed, waiting for the peer's EOF. */
  lingerMs: number;
}

/** Input before attach(): closed and dropped. */
const IGNORE_INPUT: FdStreamListener = { data: (_chunk, fds) => closeAll(fds), end: () => undefined };

type FdStreamState = 'open' | 'input-ended' | 'draining' | 'closed';

export class FdStream {
  /** Node's socket for writing (a duplicate fd); its 'close' starts the drain of the input side. */
  readonly writer: net.Socket;
  private readonly poll: FdPoll;
  private state: FdStreamState = 'open';
  private paused = true;
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  private listener: FdStreamListener = IGNORE_INPUT;

  /** Takes ownership of connected, non-blocking `fd`. Input is paused until resume(), and goes nowhere until attach(). */
  constructor(
    private readonly fd: number,
    private readonly options: FdStreamOptions,
  ) {
    const writeFd = duplicate(fd);
    try {
      this.poll = new FdPoll(fd, (events, error) => this.onReady(events, error));
    } catch (error) {
      close(writeFd);
      throw error;
    }
    this.writer = new net.Socket({ fd: writeFd, readable: false, writable: true });
    // Ended in order: drain. Destroyed (a client cut off, an error): close at once.
    this.writer.once('close', () => (this.writer.writableFinished ? this.drain() : this.finish()));
  }

  /** Where input goes from now on. */
  attach(listener: FdStreamListener): void {
    this.listener = listener;
  }

  pause(): void {
    if (this.paused || this.state !== 'open') return;
    this.paused = true;
    this.poll.stop();
  }

  resume(): void {
    if (!this.paused || this.state !== 'open') return;
    this.paused = false;
    this.poll.start(READABLE | DISCONNECT);
  }

  /** Closes fds that came with this stream's input (the listener's to close). */
  closeFds(fds: readonly number[]): void {
    closeAll(fds);
  }

  /** Closes both sides now; no more callbacks. */
  destroy(): void {
    if (this.state === 'closed') return;
    this.finish();
    this.writer.destroy();
  }

  private onReady(events: number, error: string | undefined): void {
    if (error !== undefined) return this.inputEnded();
    if ((events & (READABLE | DISCONNECT)) === 0) return;
    // One read per readiness: the poll is level-triggered, so more input calls again, and a paused session stops here.
    let received;
    try {
      received = receiveWithFds(this.fd, this.buffer, this.options.maxFds);
    } catch (failure) {
      if (failure instanceof SystemCallError) return this.inputEnded();
      throw failure;
    }
    if (received === null) return;
    if (received.length === 0 && received.fds.length === 0) return this.inputEnded();
    if (this.state === 'draining') {
      closeAll(received.fds);
      return;
    }
    this.listener.data(Buffer.from(this.buffer.subarray(0, received.length)), received.fds, received.truncated);
  }

  private inputEnded(): void {
    if (this.state === 'draining') return this.finish();
    if (this.state !== 'open') return;
    this.state = 'input-ended';
    this.poll.stop();
    this.listener.end();
  }

  private drain(): void {
    if (this.state === 'closed') return;
    if (this.state === 'input-ended') return this.finish();
    this.state = 'draining';
    this.poll.start(READABLE | DISCONNECT);
    this.lingerTimer = setTimeout(() => this.finish(), this.options.lingerMs).unref();
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.lingerTimer);
    this.poll.close();
    close(this.fd);
  }
}
