/**
 * One downstream client's outbound side: batched writes, a bounded buffer,
 * and explicit overflow (DESIGN.md invariant 4).
 *
 * Writes made in one tick are corked into one syscall. Bytes the client has
 * not read yet count against `maxBufferedBytes`; past it the client is
 * disconnected and `onOverflow` is told once (the caller logs it). Nothing
 * ever waits for a client: the upstream reader is never slowed.
 *
 * Above half the limit the client's input is paused (`onBackpressure(true)`)
 * until its backlog is written: a client that pipelines commands without reading the
 * replies is slowed down, not disconnected. Only what cannot be paused,
 * events, can overflow the buffer.
 */
import type { Socket } from 'node:net';

/** How long an ended connection may stay half-open waiting for the client to close its side. */
export const END_LINGER_MS = 10_000;

export type OutboundState = 'open' | 'overflowed' | 'ended';

export interface OutboundOptions {
  maxBufferedBytes: number;
  /** Called once when the client is disconnected for falling behind. */
  onOverflow(bufferedBytes: number): void;
  /** Called with true when the buffer passes half the limit, false once it drains. */
  onBackpressure?(paused: boolean): void;
}

export class Outbound {
  private state: OutboundState = 'open';
  private corked = false;
  private paused = false;
  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  constructor(
    private readonly socket: Socket,
    private readonly options: OutboundOptions,
  ) {}

  /** True while bytes can still be written. */
  get open(): boolean {
    return this.state === 'open' && !this.socket.destroyed && this.socket.writable;
  }

  /** Bytes accepted but not yet taken by the client's socket. */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  /** Queues `text`; returns false if the client is gone or was just dropped for overflow. */
  write(text: string): boolean {
    if (!this.open) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(text);
    return this.check();
  }

  /**
   * Writes `text` in a write of its own, flushing what was batched before,
   * and calls `written` once the kernel has it. go-qemu drops whatever
   * arrives in the same read as the qmp_capabilities reply, so that reply
   * must not share a write with what follows.
   */
  writeAlone(text: string, written: () => void): boolean {
    if (!this.open) return false;
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    this.socket.write(text, (error) => {
      if (!error) written();
    });
    return this.check();
  }

  /**
   * Ends the stream after what is queued (as QEMU's exit would). Input is
   * read and discarded from now on, so the client's own end is seen and the
   * connection closes; a client that never ends is cut off after
   * `lingerMs`.
   */
  end(lingerMs = END_LINGER_MS): void {
    if (this.state !== 'open') return;
    this.state = 'ended';
    if (this.corked) this.uncork();
    this.socket.end();
    this.socket.removeAllListeners('data');
    this.socket.on('data', () => undefined);
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), lingerMs).unref();
  }

  private check(): boolean {
    const buffered = this.socket.writableLength;
    if (buffered > this.options.maxBufferedBytes) {
      this.state = 'overflowed';
      this.socket.destroy();
      this.options.onOverflow(buffered);
      return false;
    }
    if (buffered > this.options.maxBufferedBytes / 2 && !this.paused) {
      this.setPaused(true);
      // An empty write completes once everything before it has reached the kernel: the backlog is gone.
      this.socket.write('', () => this.setPaused(false));
    }
    return true;
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    this.options.onBackpressure?.(paused);
  }
}
