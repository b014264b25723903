/**
 * One client connection of the RPC endpoint, without the socket: fed the
 * bytes the client sent, it hands the bytes to send back to a sink. The
 * socket server (not here) wires `receive` to 'data', the sink's `write` to
 * the socket with its bounded outbound buffer (docs/design.md invariant 4), its
 * `close` to destroy(), and `setReading` to pause()/resume().
 *
 *   bytes ─▶ FrameDecoder ─▶ message filters (e.g. keepalive) ─▶ Dispatcher ─▶ sink.write
 *                                                                  ≤ maxConcurrentCalls at once
 *
 * Like libvirtd (max_client_requests, default 5), at most
 * `maxConcurrentCalls` messages are being dispatched at once; later ones
 * wait in the decoder and the sink is asked to stop reading until a slot
 * frees. Replies go out as their handlers finish, so they may overtake each
 * other; clients match them by serial, as with libvirtd.
 *
 *   open ──close() / FrameError──▶ closed
 *
 * File descriptors (a connection that `receivesFds`): libvirt sends the
 * fds of a CALL_WITH_FDS message after it, each with one placeholder byte
 * (virNetSocketSendFD), so such a message waits until all its placeholder
 * bytes are in; the fds that arrived by then, after the message began, are
 * its own, in order. Any other fd (sent with a message that announces
 * none, or more than announced) is closed through the sink, and so is
 * every fd a message still held when its dispatch settles or the
 * connection closes: qmpx never keeps a client's fd.
 *
 * A FrameError (unframeable input, or input buffered past
 * `maxBufferedInputBytes`) closes the connection, as libvirtd closes such a
 * client; nothing else does. On close, running handlers see their
 * AbortSignal fire and their replies are dropped.
 */
import type { MemoryBudget } from '../net/memory-budget.js';
import { silentLogger } from '../log.js';
import { StateMachine, type Transitions } from '../state.js';
import { FrameError } from './errors.js';
import { FrameDecoder, encodeMessage, type RpcHeader, type RpcMessage } from './framing.js';
import { LENGTH_WORD_BYTES } from './protocol.js';

export interface RpcConnectionSink {
  /** Complete messages, in the order they must be sent. Must not throw. */
  write(bytes: Buffer): void;
  /** Called once when the connection closes: with the FrameError that caused it, or null after close(). */
  close(error: FrameError | null): void;
  /** Flow control: false while every call slot is busy, true once one frees (pause/resume the socket). */
  setReading?(reading: boolean): void;
  /** Closes fds the client sent (given to `receive`); required with `receivesFds`. */
  closeFds?(fds: readonly number[]): void;
}

export interface RpcConnectionOptions {
  /** Largest header + body accepted from the client. Default and ceiling 32 MiB (docs/monitor-facts.md §6). */
  maxMessageBytes?: number;
  /** Messages dispatched at once. Default 5, libvirtd's max_client_requests. */
  maxConcurrentCalls?: number;
  /**
   * Received bytes that may wait undispatched. Past it the connection fails
   * with FrameError input-overflow (the reader ignored setReading(false)).
   * Default: one largest message plus 4 MiB.
   */
  maxBufferedInputBytes?: number;
  /** See FrameDecoderOptions: skip the one placeholder byte per passed fd. Default true. */
  skipFdPlaceholderBytes?: boolean;
  /** See FrameDecoderOptions: the process-wide pool partial frames are charged to. */
  budget?: MemoryBudget;
  /** The transport hands over the fds the client sends (`receive(chunk, fds)`); answers FD_PASSING. Default false. */
  receivesFds?: boolean;
}

/**
 * What the connection hands each complete call to: the Dispatcher of
 * lib/rpc/dispatch.ts, named by shape so the two files do not import each other.
 */
export interface CallDispatcher {
  dispatch(
    message: RpcMessage,
    call: { readonly signal: AbortSignal; readonly connection: RpcConnection; readonly fds: readonly number[] },
  ): Promise<Buffer | null>;
}

/**
 * Sees every message before dispatch; returns true when it consumed the
 * message (libvirt's virNetServerClientAddFilter, used there for keepalive).
 * Runs synchronously, in arrival order. Must not throw.
 */
export type MessageFilter = (message: RpcMessage, connection: RpcConnection) => boolean;

export type RpcConnectionState = 'open' | 'closed';

const NEXT_STATES: Transitions<RpcConnectionState> = { open: ['closed'], closed: [] };

export const DEFAULT_MAX_CONCURRENT_CALLS = 5;
const INPUT_SLACK_BYTES = 4 * 1024 * 1024;

let nextConnectionId = 1;

export class RpcConnection {
  /** Unique per process, for logs and per-connection maps. */
  readonly id = nextConnectionId++;
  readonly maxConcurrentCalls: number;
  readonly maxBufferedInputBytes: number;
  /** fds the client sends reach the calls that announce them (CALL_WITH_FDS). */
  readonly receivesFds: boolean;
  /** Received fds no call has taken yet, each with the input byte count at its arrival. */
  private receivedFds: Array<{ fd: number; arrivedAt: number }> = [];
  private receivedBytes = 0;
  /** A CALL_WITH_FDS message waiting for its placeholder bytes (and so its fds); `startedAt`: the input byte it began at. */
  private awaitingFds: { message: RpcMessage; startedAt: number } | undefined;
  private readonly machine: StateMachine<RpcConnectionState>;
  private readonly decoder: FrameDecoder;
  private readonly filters: MessageFilter[] = [];
  private readonly abortController = new AbortController();
  private running = 0;
  private reading = true;
  private messagesTaken = 0;
  private settledWaiters: Array<() => void> = [];

  constructor(
    private readonly dispatcher: CallDispatcher,
    private readonly sink: RpcConnectionSink,
    options: RpcConnectionOptions = {},
  ) {
    this.machine = new StateMachine<RpcConnectionState>('open', NEXT_STATES, silentLogger, { connection: this.id }, 'RPC connection state');
    this.decoder = new FrameDecoder({
      maxMessageBytes: options.maxMessageBytes,
      skipFdPlaceholderBytes: options.skipFdPlaceholderBytes,
      budget: options.budget,
    });
    this.maxConcurrentCalls = Math.max(1, options.maxConcurrentCalls ?? DEFAULT_MAX_CONCURRENT_CALLS);
    this.receivesFds = options.receivesFds ?? false;
    this.maxBufferedInputBytes =
      options.maxBufferedInputBytes ?? this.decoder.maxMessageBytes + LENGTH_WORD_BYTES + INPUT_SLACK_BYTES;
  }

  get state(): RpcConnectionState {
    return this.machine.current;
  }

  /** Messages being dispatched right now. */
  get callsInFlight(): number {
    return this.running;
  }

  /** Fires when the connection closes. */
  get signal(): AbortSignal {
    return this.abortController.signal;
  }

  /** Complete messages taken from the client so far. */
  get messagesReceived(): number {
    return this.messagesTaken;
  }

  /** Bytes of a message the client has begun and not finished (see FrameDecoder.partialFrameBytes). */
  get partialInputBytes(): number {
    return this.state === 'open' ? this.decoder.partialFrameBytes : 0;
  }

  addMessageFilter(filter: MessageFilter): void {
    this.filters.push(filter);
  }

  /** Feeds bytes from the client, and the fds that came with them. Never throws; ignored (fds closed) once closed. */
  receive(chunk: Uint8Array, fds: readonly number[] = []): void {
    if (this.state !== 'open') {
      this.closeFds(fds);
      return;
    }
    this.receivedBytes += chunk.length;
    for (const fd of fds) this.receivedFds.push({ fd, arrivedAt: this.receivedBytes });
    try {
      this.decoder.push(chunk);
      if (this.decoder.bufferedBytes > this.maxBufferedInputBytes) {
        throw new FrameError(
          `${this.decoder.bufferedBytes} bytes of input waiting, over the limit of ${this.maxBufferedInputBytes}`,
          'input-overflow',
        );
      }
    } catch (error) {
      this.fail(error);
      return;
    }
    this.pump();
  }

  /**
   * Sends a server-initiated message (an event MESSAGE, a keepalive PING or
   * PONG). Returns false when the connection is closed. Throws XdrError for
   * a header word out of range or a message over the limit (a caller bug).
   */
  send(header: RpcHeader, body?: Uint8Array, fdCount = 0): boolean {
    if (this.state !== 'open') return false;
    this.sink.write(encodeMessage(header, body, fdCount));
    return true;
  }

  /** Closes the connection (idempotent): running handlers are aborted, their replies dropped. */
  close(): void {
    this.transitionToClosed(null);
  }

  /**
   * Resolves once no message is being dispatched (so, while open, no complete
   * one is waiting either); for tests and orderly shutdown.
   */
  settled(): Promise<void> {
    if (this.isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Starts dispatching waiting messages while call slots are free. */
  private pump(): void {
    while (this.state === 'open' && this.running < this.maxConcurrentCalls) {
      if (this.awaitingFds !== undefined) {
        if (this.decoder.skipPlaceholderBytes() > 0) break;
        const { message, startedAt } = this.awaitingFds;
        this.awaitingFds = undefined;
        this.closeFdsArrivedBy(startedAt);
        const fds = this.receivedFds.splice(0, message.fdCount).map((entry) => entry.fd);
        this.startDispatch(message, fds);
        continue;
      }
      const startedAt = this.consumedBytes;
      let message: RpcMessage | null;
      try {
        message = this.decoder.next();
      } catch (error) {
        this.fail(error);
        return;
      }
      if (!message) break;
      this.messagesTaken++;
      if (this.receivesFds && message.fdCount > 0) {
        this.awaitingFds = { message, startedAt };
        continue;
      }
      // A message's own fds come after it: any that arrived by its end came with no call.
      this.closeFdsArrivedBy(this.consumedBytes);
      if (this.filters.some((filter) => filter(message, this))) continue;
      this.startDispatch(message, []);
    }
    this.updateReading();
    this.notifyIfSettled();
  }

  /** Input bytes taken out of the decoder (messages and skipped placeholders). */
  private get consumedBytes(): number {
    return this.receivedBytes - this.decoder.bufferedBytes;
  }

  private closeFdsArrivedBy(offset: number): void {
    let stray = 0;
    while (stray < this.receivedFds.length && this.receivedFds[stray]!.arrivedAt <= offset) stray++;
    if (stray > 0) this.closeFds(this.receivedFds.splice(0, stray).map((entry) => entry.fd));
  }

  private closeFds(fds: readonly number[]): void {
    if (fds.length > 0) this.sink.closeFds?.(fds);
  }

  private startDispatch(message: RpcMessage, fds: readonly number[]): void {
    this.running++;
    const call = { signal: this.abortController.signal, connection: this, fds };
    void this.dispatcher.dispatch(message, call).then((reply) => {
      // The monitor command that carried them has settled: the kernel gave QEMU its own copies.
      this.closeFds(fds);
      this.running--;
      if (reply && this.state === 'open') this.sink.write(reply);
      this.pump();
    });
  }

  /** Like libvirtd: read only while a call slot is free (virNetServerClientUpdateEvent). */
  private updateReading(): void {
    const wantReading = this.running < this.maxConcurrentCalls;
    if (this.state !== 'open' || wantReading === this.reading) return;
    this.reading = wantReading;
    this.sink.setReading?.(wantReading);
  }

  private fail(error: unknown): void {
    // The decoder throws FrameError and nothing else; anything else is a bug and must surface.
    if (!(error instanceof FrameError)) throw error;
    this.transitionToClosed(error);
  }

  /** The one state change: open → closed. Later calls are no-ops. */
  private transitionToClosed(error: FrameError | null): void {
    if (this.machine.current === 'closed') return;
    this.machine.transition('closed', error === null ? 'close()' : error.message);
    this.decoder.release();
    this.closeFds(this.receivedFds.map((entry) => entry.fd));
    this.receivedFds = [];
    this.awaitingFds = undefined;
    this.abortController.abort(error ?? undefined);
    this.sink.close(error);
    this.notifyIfSettled();
  }

  /**
   * Nothing is being dispatched. While open, that also means no complete
   * message is waiting: pump() starts every complete message a free slot can take.
   */
  private isSettled(): boolean {
    return this.running === 0;
  }

  private notifyIfSettled(): void {
    if (!this.isSettled()) return;
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
