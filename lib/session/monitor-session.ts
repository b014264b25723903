/**
 * What every monitor session has, whatever it speaks: the socket, the run
 * state, `closed`, `events$` and `protocolErrors$`, start-up under one
 * deadline, `close()`, the one end of a connection, the local request queue
 * and the checks a request passes before it is queued. QMP, HMP and the
 * guest agent (lib/qmp, lib/hmp, lib/qga) add only what differs: framing,
 * greeting or resynchronisation, and how replies find their requests.
 *
 *   start(): attach ──negotiate()──▶ ready          (any failure: finish(), rethrow)
 *   socket end / error / close, close(), a fatal fault ──▶ finish() (once)
 *
 * finish() settles every request still pending exactly once (docs/design.md
 * invariant 2), through the protocol's one settleOnClose() hook: a `quit`
 * or a guest shutdown is answered by the close itself, anything else is
 * rejected with ConnectionClosedError.
 */
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import { LazySubject } from '../lazy-rx.js';
import { ConnectionClosedError, ProtocolError, StateError, UnsupportedError } from '../errors.js';
import { defaultLogger, type Logger } from '../log.js';
import type { CloseInfo, ExecuteOptions, MonitorOptions, QmpEvent } from '../contract.js';
import { DRIVER_ORIGIN, type PendingRequest, type RequestOrigin } from '../request.js';
import { MonitorStateMachine, type MonitorState } from '../state.js';
import { RequestQueue, type Settleable } from './request-queue.js';
import { FD_PASSING_NOT_ASKED, type FdPassing } from '../transport.js';
import { FdWriter } from './fd-writer.js';
import { fdsRefusal, requestedFds, takesFds } from './fd-rules.js';

/** How much of a message a protocol error's log line quotes. */
export const EVIDENCE_CHARS = 200;

/** How the session names its peer in messages: "the monitor connection is closed", "the agent ...". */
export type PeerName = 'monitor' | 'agent';

export abstract class MonitorSession<Request extends Settleable> {
  readonly logger: Logger;
  readonly closed: Promise<CloseInfo>;
  protected readonly eventsSubject = new LazySubject<QmpEvent>();
  private readonly protocolErrorsSubject = new LazySubject<ProtocolError>();
  protected readonly stateMachine: MonitorStateMachine;
  /** Requests accepted and not yet written, oldest first. */
  protected readonly waiting = new RequestQueue<Request>();
  protected readonly commandTimeoutMs: number | undefined;
  /** The peer is expected to go away (quit, SHUTDOWN, a guest shutdown): its end is not a loss. */
  protected closeExpected = false;
  /** close() was called. */
  protected closedByCaller = false;
  /** Writes the commands that carry file descriptors; absent when the connection cannot. */
  protected readonly fdWriter: FdWriter | undefined;
  private readonly noFdPassingReason: string;
  private resolveClosed!: (info: CloseInfo) => void;

  constructor(
    protected readonly socket: Duplex,
    options: MonitorOptions,
    /** Names the monitor in logs and errors. */
    readonly label: string,
    private readonly peer: PeerName,
    fdPassing: FdPassing = FD_PASSING_NOT_ASKED,
  ) {
    this.fdWriter = fdPassing.sender === null ? undefined : new FdWriter(socket, fdPassing.sender);
    this.noFdPassingReason = fdPassing.sender === null ? fdPassing.reason : '';
    this.logger = options.logger ?? defaultLogger;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.stateMachine = new MonitorStateMachine(this.logger, label);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** Whether commands may carry file descriptors on this connection. */
  get fdPassing(): boolean {
    return this.fdWriter !== undefined;
  }

  get events$(): Observable<QmpEvent> {
    return this.eventsSubject.asObservable();
  }

  get protocolErrors$(): Observable<ProtocolError> {
    return this.protocolErrorsSubject.asObservable();
  }

  get state(): MonitorState {
    return this.stateMachine.current;
  }

  /** connecting → negotiating → ready → closed; replays the current state. */
  get state$(): Observable<MonitorState> {
    return this.stateMachine.state$;
  }

  /** Requests not yet settled. */
  get pendingCount(): number {
    return this.writtenPendingCount() + this.waiting.unsettledCount();
  }

  /** Bytes from the peer. */
  protected abstract onData(chunk: Buffer): void;
  /** The input is over: report what was cut off in the middle, if anything. */
  protected abstract endInput(): void;
  /** Removes and returns the requests written and not yet answered. */
  protected abstract takeWritten(): Iterable<Request>;
  /** How many requests written and not yet answered are still unsettled. */
  protected abstract writtenPendingCount(): number;
  /**
   * Settles a request still pending when the connection ended: with
   * `error`, unless the protocol knows the end is its answer (a `quit`, a
   * guest shutdown). Called once per request, after the state is closed:
   * first those written (`written` true), then those still queued.
   */
  protected abstract settleOnClose(request: Request, error: Error, written: boolean): void;
  /** The error start() fails with when the deadline passes. */
  protected abstract startTimeoutError(timeoutMs: number): Error;
  /** What start() says when the peer hangs up before the session is ready. */
  protected abstract get closedDuringStartMessage(): string;

  /** Called once the session is ready, before start() resolves. */
  protected onReady(): void {}

  /** Completes events$ (a protocol that holds events back may complete it later). */
  protected completeEvents(): void {
    this.eventsSubject.complete();
  }

  /**
   * Attaches to the socket and runs `negotiate` (greeting, capabilities,
   * resynchronisation) under one deadline: it covers the whole start-up,
   * not just the first message. Any failure ends the session (finish(), with
   * the failure as its cause) before it is rethrown, so a failed start
   * leaves nothing behind: no timer, no listener, a destroyed socket.
   */
  protected async startSession(timeoutMs: number, firstBytes: Buffer, negotiate: () => Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(this.startTimeoutError(timeoutMs)), timeoutMs);
    });
    const ended = this.closed.then((info): never => {
      throw new ConnectionClosedError(this.closedDuringStartMessage, { cause: info.cause });
    });
    ended.catch(() => undefined);
    try {
      // negotiate() first: it is waiting for the greeting before the first bytes are read.
      const negotiated = negotiate();
      this.attach(firstBytes);
      await Promise.race([negotiated, deadline, ended]);
      this.stateMachine.transition('ready', 'session established');
      this.onReady();
    } catch (error) {
      this.finish({ expected: false, cause: error as Error });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private attach(firstBytes: Buffer): void {
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('end', () => this.finish({ expected: this.closeExpected }));
    this.socket.on('error', (error: NodeJS.ErrnoException) => {
      const expected = this.closeExpected && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
      this.finish(expected ? { expected } : { expected, cause: error });
    });
    this.socket.on('close', () => this.finish({ expected: this.closeExpected }));
    if (firstBytes.length > 0) this.onData(firstBytes);
    this.socket.resume();
  }

  /** Throws UnsupportedError unless `args` is absent or a JSON object. */
  protected checkArguments(command: string, args: unknown): void {
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
      throw new UnsupportedError(`${command}: arguments must be a JSON object, got ${Array.isArray(args) ? 'an array' : typeof args}`);
    }
  }

  /**
   * Why a request for `command` cannot be accepted now, if it cannot: the
   * session is closed, not ready (unless it is part of the start-up), the
   * request asks for out-of-band execution the session does not have, or
   * carries file descriptors it cannot send.
   */
  protected refusalOf(command: string, opts: ExecuteOptions, startingUp = false): Error | undefined {
    const state = this.stateMachine.current;
    if (state === 'closed') return new ConnectionClosedError(`${command}: the ${this.peer} connection is closed`);
    if (state !== 'ready' && !startingUp) return new StateError(`${command}: the ${this.peer} is not ready (${state})`, state);
    if (opts.oob === true && !this.offersOob()) return new UnsupportedError(this.noOobMessage(command));
    const fds = requestedFds(opts.fds);
    if (fds !== undefined) return this.fdRefusal(command, fds, opts);
    return undefined;
  }

  /** Why `fds` cannot go with `command` here, if they cannot (lib/session/fd-rules.ts). */
  protected fdRefusal(command: string, fds: readonly number[], opts: ExecuteOptions): Error | undefined {
    if (this.fdWriter === undefined) return new UnsupportedError(`${command}: cannot send file descriptors: ${this.noFdPassingReason}`);
    if (opts.oob === true) return new UnsupportedError(`${command}: file descriptors cannot go with an out-of-band command`);
    return fdsRefusal(command, fds, this.takesFds(command), this.fdCommandsText);
  }

  /** Whether `command` takes the fds sent with it. */
  protected takesFds(command: string): boolean {
    return takesFds(command);
  }

  /** Which commands take fds, for the refusal's message. */
  protected get fdCommandsText(): string {
    return 'only getfd and add-fd take them';
  }

  /** Whether out-of-band execution was negotiated. */
  protected offersOob(): boolean {
    return false;
  }

  protected noOobMessage(command: string): string {
    return `${command}: out-of-band execution was not negotiated with this ${this.peer}`;
  }

  /**
   * Queues `request` for pump(), or rejects it at once with the reason it
   * cannot be accepted now (refusalOf). Resolves as the request settles.
   */
  protected admit<Reply>(request: Request & PendingRequest<Reply>, opts: ExecuteOptions, checkedAs: string = request.command): Promise<Reply> {
    const refusal = this.refusalOf(checkedAs, opts);
    if (refusal !== undefined) {
      request.reject(refusal);
    } else {
      this.waiting.push(request);
      this.pump();
    }
    return request.promise;
  }

  /** Writes what the protocol can write now of the queue. */
  protected abstract pump(): void;

  /** Who asks, when the caller did not say. */
  protected originOf(opts: { origin?: RequestOrigin }): RequestOrigin {
    return opts.origin ?? DRIVER_ORIGIN;
  }

  close(): Promise<void> {
    if (this.stateMachine.current !== 'closed') {
      this.closedByCaller = true;
      this.finish({ expected: true }, new ConnectionClosedError(`the ${this.peer} connection was closed by the caller`));
    }
    return this.closed.then(() => undefined);
  }

  protected reportProtocolError(message: string, evidence: string, error = new ProtocolError(message, evidence)): void {
    this.logger.warn({ monitor: this.label, evidence: evidence.slice(0, EVIDENCE_CHARS) }, message);
    this.protocolErrorsSubject.next(error);
  }

  /** The peer sent more than maxMessageBytes in one message: reported, and the connection ends. */
  protected failOversize(what: string, bytes: number, limit: number): void {
    const error = new ProtocolError(`${what} of ${bytes}+ bytes exceeds maxMessageBytes (${limit}); connection closed`);
    this.reportProtocolError(error.message, '', error);
    this.finish({ expected: false, cause: error });
  }

  /** Ends the session once: settles every request, completes every stream, destroys the socket. */
  protected finish(info: CloseInfo, pendingError?: Error): void {
    if (this.stateMachine.current === 'closed') return;
    this.endInput();
    const expected = info.expected || this.closedByCaller;
    const error =
      pendingError ??
      new ConnectionClosedError(
        expected
          ? `the ${this.peer} closed the connection`
          : `the ${this.peer} connection was lost${info.cause ? `: ${info.cause.message}` : ''}`,
        { cause: info.cause },
      );
    const written = [...this.takeWritten()];
    const queued = this.waiting.takeAll();
    this.stateMachine.transition('closed', info.cause?.message ?? (expected ? 'closed' : 'connection lost'));
    for (const request of written) this.settleOnClose(request, error, true);
    for (const request of queued) this.settleOnClose(request, error, false);
    this.completeEvents();
    this.protocolErrorsSubject.complete();
    this.socket.destroy();
    this.resolveClosed(info.cause && !expected ? { expected, cause: info.cause } : { expected });
  }
}
