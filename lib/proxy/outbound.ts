/**
 * One downstream client's outbound side: batched writes, a bounded buffer,
 * and explicit overflow (DESIGN.md invariant 4).
 *
 * The first text written in a tick goes to the socket at once (a lone
 * reply waits for nothing); what follows in the same tick is joined and
 * handed over in one write() at the end of the tick (a plain write, not
 * cork()/writev(), which costs more for the usual single reply). Bytes
 * the client has not read yet, batched or in the socket, count against
 * `maxBufferedBytes`; past it the client is disconnected and `onOverflow`
 * is told once (the caller logs it). Nothing ever waits for a client: the
 * upstream reader is never slowed.
 *
 * Above half the limit the client's input is paused (`onBackpressure(true)`)
 * until its backlog is written: a client that pipelines commands without
 * reading the replies is slowed down, not disconnected. Only what cannot be
 * paused, events, can overflow the buffer.
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
  /** Text written this tick, not yet handed to the socket. */
  private batch = '';
  private flushScheduled = false;
  private paused = false;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.batch === '' || this.socket.destroyed) return;
    const text = this.batch;
    this.batch = '';
    this.socket.write(text);
  };

  constructor(
    private readonly socket: Socket,
    private readonly options: OutboundOptions,
  ) {}

  /** True while bytes can still be written. */
  get open(): boolean {
    return this.state === 'open' && !this.socket.destroyed && this.socket.writable;
  }

  /** Bytes accepted but not yet taken by the client's socket (QEMU's output is ASCII: one char, one byte). */
  get bufferedBytes(): number {
    return this.socket.writableLength + this.batch.length;
  }

  /** Queues `text`; returns false if the client is gone or was just dropped for overflow. */
  write(text: string): boolean {
    if (!this.open) return false;
    if (this.flushScheduled) {
      this.batch += text;
    } else {
      this.flushScheduled = true;
      process.nextTick(this.flush);
      this.socket.write(text);
    }
    return this.check();
  }

  /**
   * Writes `text` in a write of its own, after what was batched before, and
   * calls `written` once the kernel has it. go-qemu drops whatever arrives
   * in the same read as the qmp_capabilities reply, so that reply must not
   * share a write with what follows.
   */
  writeAlone(text: string, written: () => void): boolean {
    if (!this.open) return false;
    this.flush();
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
    this.flush();
    this.socket.end();
    this.socket.removeAllListeners('data');
    this.socket.on('data', () => undefined);
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), lingerMs).unref();
  }

  private check(): boolean {
    const buffered = this.bufferedBytes;
    if (buffered > this.options.maxBufferedBytes) {
      this.state = 'overflowed';
      this.batch = '';
      this.socket.destroy();
      this.options.onOverflow(buffered);
      return false;
    }
    if (buffered > this.options.maxBufferedBytes / 2 && !this.paused) {
      this.setPaused(true);
      // Once written, an empty write's callback runs: everything before it has reached the kernel.
      process.nextTick(() => this.socket.write('', () => this.setPaused(false)));
    }
    return true;
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    this.options.onBackpressure?.(paused);
  }
}
