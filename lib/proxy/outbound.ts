/**
 * One downstream client's outbound side: batched writes, a bounded buffer,
 * and explicit overflow (docs/design.md invariant 4).
 *
 * The first text written in a tick goes to the socket at once (a lone
 * reply waits for nothing); what follows in the same tick is joined and
 * handed over in one write() at the end of the tick (a plain write, not
 * cork()/writev(), which costs more for the usual single reply). Bytes
 * the client has not read yet, batched or in the socket, are its unread
 * bytes.
 *
 * Above half of `maxBufferedBytes` unread, the client's input is paused
 * (`onBackpressure(true)`) until its backlog is written: the session runs
 * none of its commands meanwhile. Two kinds of text, two rules:
 *
 * - Answers (`write`, `writeAlone`: greetings, replies, prompts, errors
 *   answered locally) are never a reason to disconnect. Past the half they
 *   can only be answers to what the session had already accepted, which
 *   the session bounds (maxPendingCommands answers, each at most one
 *   upstream message).
 * - Events (`writeEvent`) cannot be paused at their source. Once the unread
 *   bytes, not counting answers written past the half, pass
 *   `maxBufferedBytes`, the client is disconnected and `onOverflow` is told
 *   once (the caller logs it).
 *
 * So a client that pipelines and reads slowly is slowed, never dropped;
 * one that stops reading holds at most `maxBufferedBytes` plus its
 * accepted answers, and is dropped only once events pass that. Nothing
 * ever waits for a client: the upstream reader is never slowed.
 */
import type { Socket } from 'node:net';

/** How long an ended connection may stay half-open waiting for the client to close its side. */
export const END_LINGER_MS = 10_000;

export type OutboundState = 'open' | 'overflowed' | 'ended';

export interface OutboundOptions {
  maxBufferedBytes: number;
  /** Called once when the client is disconnected for falling behind on events. */
  onOverflow(bufferedBytes: number): void;
  /** Called with true when the unread bytes pass half the limit, false once they are back under it. */
  onBackpressure?(paused: boolean): void;
}

export class Outbound {
  private state: OutboundState = 'open';
  /** Text written this tick, not yet handed to the socket. */
  private batch = '';
  private flushScheduled = false;
  private paused = false;
  /**
   * Unread answer bytes written past the half of the limit, as an upper
   * bound: it grows by what each such answer adds past the half, and is cut
   * to the unread bytes past the half whenever those are measured (the
   * client reads oldest first, answers past the half are the newest).
   */
  private answerBytesPastHalf = 0;
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

  /** Queues an answer; returns false if the client is gone. Never disconnects the client. */
  write(text: string): boolean {
    if (!this.open) return false;
    this.send(text);
    this.countAnswer(text.length);
    return true;
  }

  /** Queues an event; returns false if the client is gone or was just dropped for overflow. */
  writeEvent(text: string): boolean {
    if (!this.open) return false;
    this.send(text);
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
    this.countAnswer(text.length);
    return true;
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
    // Cleared once the socket closes: a pending timer would keep the closed session reachable for lingerMs.
    const linger = setTimeout(() => this.socket.destroy(), lingerMs).unref();
    this.socket.once('close', () => clearTimeout(linger));
  }

  private send(text: string): void {
    if (this.flushScheduled) {
      this.batch += text;
    } else {
      this.flushScheduled = true;
      process.nextTick(this.flush);
      this.socket.write(text);
    }
  }

  private countAnswer(answerBytes: number): void {
    const pastHalf = this.bufferedBytes - this.options.maxBufferedBytes / 2;
    if (pastHalf > 0) this.answerBytesPastHalf = Math.min(this.answerBytesPastHalf + answerBytes, pastHalf);
    this.pauseAboveHalf(pastHalf);
  }

  /** After an event: disconnects a client whose unread bytes, answers past the half aside, pass the limit. */
  private check(): boolean {
    const buffered = this.bufferedBytes;
    const pastHalf = buffered - this.options.maxBufferedBytes / 2;
    this.answerBytesPastHalf = Math.max(0, Math.min(this.answerBytesPastHalf, pastHalf));
    if (buffered - this.answerBytesPastHalf > this.options.maxBufferedBytes) {
      this.state = 'overflowed';
      this.batch = '';
      this.socket.destroy();
      this.options.onOverflow(buffered);
      return false;
    }
    this.pauseAboveHalf(pastHalf);
    return true;
  }

  private pauseAboveHalf(pastHalf: number): void {
    if (pastHalf <= 0 || this.paused) return;
    this.setPaused(true);
    process.nextTick(this.resumeBelowHalf);
  }

  /**
   * Ends the pause once the unread bytes are back under half the limit, so
   * the session accepts commands only then and their answers land on at
   * most half a buffer.
   */
  private readonly resumeBelowHalf = (): void => {
    // Once written, an empty write's callback runs: everything before it has reached the kernel.
    this.socket.write('', (error) => {
      if (error || this.socket.destroyed) return;
      if (this.bufferedBytes > this.options.maxBufferedBytes / 2) this.resumeBelowHalf();
      else this.setPaused(false);
    });
  };

  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    this.options.onBackpressure?.(paused);
  }
}
