/**
 * A QMP session over one stream: greeting, negotiation, the in-flight
 * window, replies and events. The socket, run state, queue and close are
 * the shared session core's (lib/session/monitor-session.ts).
 *
 * Wire ids (docs/design.md invariant 3): QEMU answers in-band commands strictly
 * in order with exactly one reply each, so in-band commands go without an id
 * and replies are matched by position. That holds only because nothing but
 * JSON this class serialised itself is ever written. `exec-oob` commands
 * always carry a numeric qmpx id, since their replies may overtake.
 *
 *   waiting (local, unbounded by QEMU) ──pump──▶ inFlight (≤ maxInFlight, FIFO)
 *                                                   │ id-less reply settles the head
 *   exec-oob ─────────────written at once─────▶ oobById (matched by id)
 *
 * With OOB negotiated QEMU queues at most 8 in-band commands and then stops
 * reading the socket entirely (docs/monitor-facts.md §2), which would also hold back any
 * exec-oob written after them; the local window keeps QEMU's queue from
 * filling so OOB commands can always overtake. When a command with file
 * descriptors may be written, and how, is lib/qmp/fd-commands.ts's concern.
 */
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import { GreetingTimeoutError, ProtocolError, QmpError } from '../errors.js';
import { isDebugEnabled } from '../log.js';
import type { ExecuteOptions, HmpOptions, Monitor, MonitorOptions, QmpEventFrame, QmpRelay, QmpReply, RawRequestOptions } from '../contract.js';
import type { RequestOutcome } from '../request.js';
import { MonitorSession } from '../session/monitor-session.js';
import type { FdPassing } from '../transport.js';
import { QmpEventOutlet } from './event-outlet.js';
import { QmpFdCommands } from './fd-commands.js';
import { JsonObjectFramer } from './framer.js';
import { runHumanMonitorCommand } from './human-monitor-command.js';
import { isClosingCommand, QUIT_REPLY, ReplyRequest, ValueRequest, type QmpRequest } from './request.js';
import { unreadableReply } from './unreadable-reply.js';
import { stringifyJson } from './json.js';
import { classify, parseMonitorJson, RETURN_PREFIX, UnparsedReturn, wireCommand, type QmpGreeting } from './wire.js';
import { ArgumentChecker } from '../qapi/argument-checker.js';

export type { QmpEventFrame, QmpReply, RawRequestOptions } from '../contract.js';

export const DEFAULT_MAX_IN_FLIGHT = 8;

export class QmpMonitor extends MonitorSession<QmpRequest> implements Monitor, QmpRelay {
  readonly protocol = 'qmp' as const;
  greeting: QmpGreeting | null = null;
  /** The greeting exactly as QEMU sent it (without its line end), for proxies that greet downstream. */
  greetingText: string | null = null;
  readonly banner = null;
  capabilities: readonly string[] = [];
  readonly raw: QmpRelay = this;
  readonly relay: QmpRelay = this;

  private readonly events = new QmpEventOutlet(this.eventsSubject);

  private readonly framer: JsonObjectFramer;
  private readonly maxInFlight: number;
  /** The window filled up; pump() waits until half of it is answered. */
  private windowFull = false;
  private readonly wireIds: boolean;
  private readonly offerOob: boolean;
  private readonly inFlight: QmpRequest[] = [];
  private readonly byWireId = new Map<number, QmpRequest>();
  private nextWireId = 1;
  private onGreeting: ((greeting: QmpGreeting) => void) | undefined;
  /** Checks arguments against this QEMU's schema when validation or a compat policy asks for it. */
  readonly argumentChecker: ArgumentChecker;
  /** When commands with fds may be written, and writing them; absent when the connection cannot send fds. */
  private readonly fdCommands: QmpFdCommands | undefined;

  constructor(socket: Duplex, options: MonitorOptions, label: string, fdPassing?: FdPassing) {
    super(socket, options, label, 'monitor', fdPassing);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    this.wireIds = options.wireIds ?? false;
    this.offerOob = options.oob ?? true;
    this.argumentChecker = new ArgumentChecker(options, () => this.querySchema(), this.logger);
    this.fdCommands = this.fdWriter === undefined ? undefined : new QmpFdCommands(this.fdWriter);
    this.framer = new JsonObjectFramer(
      {
        message: (text, parsed) => this.onMessage(text, parsed),
        garbage: (text) => this.reportProtocolError(`bytes outside any JSON object`, text),
        oversize: (bytes, limit) => this.failOversize('message', bytes, limit),
        takesUnparsed: () => this.relayIsNext(),
      },
      { maxMessageBytes: options.maxMessageBytes, unparsedPrefix: RETURN_PREFIX },
    );
  }

  /** Events with their exact wire text, in wire order, for consumers that forward bytes. */
  get eventFrames$(): Observable<QmpEventFrame> {
    return this.events.frames$;
  }

  /**
   * Reads the greeting (which may begin in `firstBytes`) and negotiates,
   * both within `greetingTimeoutMs`. Resolves when ready; rejects with
   * GreetingTimeoutError, QmpError or ConnectionClosedError, and then the
   * monitor is closed.
   */
  start(firstBytes: Buffer, greetingTimeoutMs: number): Promise<void> {
    return this.startSession(greetingTimeoutMs, firstBytes, async () => {
      this.greeting = await new Promise<QmpGreeting>((resolve) => (this.onGreeting = resolve));
      this.stateMachine.transition('negotiating', 'greeting received');
      const enable = this.offerOob && this.greeting.QMP.capabilities.includes('oob') ? ['oob'] : [];
      const reply = await this.request('qmp_capabilities', enable.length > 0 ? stringifyJson({ enable }) : undefined, {}, true);
      if (reply.kind === 'error') {
        const { class: errorClass, desc } = reply.message.error;
        throw new QmpError(errorClass, desc, 'qmp_capabilities');
      }
      this.capabilities = enable;
    });
  }

  protected override startTimeoutError(timeoutMs: number): Error {
    return new GreetingTimeoutError(timeoutMs);
  }

  protected override get closedDuringStartMessage(): string {
    return 'the monitor closed the connection during the greeting';
  }

  protected override onReady(): void {
    this.socket.pause();
    this.events.releaseLater(() => {
      if (this.stateMachine.current === 'closed') this.events.complete();
      else this.socket.resume();
    });
  }

  execute<T = unknown>(command: string, args?: object, opts: ExecuteOptions = {}): Promise<T> {
    try {
      this.checkArguments(command, args);
      const checking = this.argumentChecker.check(command, args, opts.validate);
      if (checking === undefined) return this.sendForValue<T>(command, args, opts);
      return checking.then(() => this.sendForValue<T>(command, args, opts));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** execute()'s command once its arguments passed their checks: it settles with the reply's value. */
  private sendForValue<T>(command: string, args: object | undefined, opts: ExecuteOptions): Promise<T> {
    const argumentsJson = args === undefined ? undefined : stringifyJson(args);
    const request = new ValueRequest(command, this.originOf(opts), opts, this.commandTimeoutMs);
    this.enqueue(request, argumentsJson, opts, false);
    return request.promise as Promise<T>;
  }

  /** QEMU's schema, asked past the argument checks (which need it). */
  private async querySchema(): Promise<unknown> {
    const reply = await this.send('query-qmp-schema', undefined);
    if (reply.kind === 'error') throw new QmpError(reply.message.error.class, reply.message.error.desc, 'query-qmp-schema');
    return reply.message.return;
  }

  hmp(commandLine: string, opts: HmpOptions = {}): Promise<string> {
    return runHumanMonitorCommand((command, args, executeOpts) => this.execute(command, args, executeOpts), commandLine, opts);
  }

  /**
   * Sends a command whose arguments are already serialised JSON (kept as
   * given, so number tokens survive exactly) and resolves with QEMU's reply,
   * error replies included. Rejects with UnsupportedError, StateError,
   * TimeoutError, AbortError or ConnectionClosedError.
   */
  send(command: string, argumentsJson: string | undefined, opts: RawRequestOptions = {}): Promise<QmpReply> {
    return this.request(command, argumentsJson, opts, false);
  }

  private request(command: string, argumentsJson: string | undefined, opts: RawRequestOptions, startingUp: boolean): Promise<QmpReply> {
    const request = new ReplyRequest(command, this.originOf(opts), opts, this.commandTimeoutMs);
    this.enqueue(request, argumentsJson, opts, startingUp);
    return request.promise;
  }

  /**
   * send() for a relay, with the outcome given to `onSettled` as it
   * happens: a reply is handed over while QEMU's bytes are read, before any
   * event that follows it on the wire is emitted, so wire order is kept
   * without a promise turn per command. A success reply comes as QEMU's
   * text, parsed only when its `message` is read (which throws
   * ProtocolError if QEMU's text is not a well-formed reply: it still
   * answers this command, as QEMU meant it). A command refused before it is
   * written is reported on a later microtask, never from inside this call.
   */
  sendWithCallback(
    command: string,
    argumentsJson: string | undefined,
    opts: RawRequestOptions,
    onSettled: (outcome: RequestOutcome<QmpReply>) => void,
  ): void {
    const request = new ReplyRequest(command, this.originOf(opts), opts, this.commandTimeoutMs, onSettled);
    request.relay = true;
    this.enqueue(request, argumentsJson, opts, false);
  }

  private enqueue(request: QmpRequest, argumentsJson: string | undefined, opts: RawRequestOptions, startingUp: boolean): void {
    const { command } = request;
    const refusal = this.refusalOf(command, opts, startingUp);
    if (refusal !== undefined) {
      queueMicrotask(() => request.reject(refusal));
      return;
    }
    request.oob = opts.oob === true;
    if (request.oob || this.wireIds) request.wireId = this.nextWireId++;
    request.wireText = wireCommand(command, argumentsJson, request.oob, request.wireId);
    if (isClosingCommand(command)) this.closeExpected = true;
    this.fdCommands?.prepare(request, opts);
    if (request.oob) {
      this.byWireId.set(request.wireId!, request);
      this.socket.write(request.wireText);
    } else if (this.waiting.isEmpty && !this.windowFull && this.inFlight.length < this.maxInFlight && request.fds === undefined && !this.fdCommands?.busy) {
      this.putOnWire(request); // nothing queued and room in the window: what pump() would do, without the queue
    } else {
      this.waiting.push(request);
      this.pump();
    }
  }

  protected override offersOob(): boolean {
    return this.capabilities.includes('oob');
  }

  protected override writtenPendingCount(): number {
    let count = this.byWireId.size;
    for (const request of this.inFlight) if (!request.settled && request.wireId === undefined) count++;
    return count;
  }

  protected override takeWritten(): QmpRequest[] {
    const written = this.inFlight.splice(0);
    for (const request of this.byWireId.values()) if (request.oob) written.push(request);
    this.byWireId.clear();
    return written;
  }

  protected override settleOnClose(request: QmpRequest, error: Error): void {
    // quit's reply can be lost when QEMU exits with it unread (docs/monitor-facts.md §2): the close is its answer.
    if (isClosingCommand(request.command) && !this.closedByCaller) request.answer(QUIT_REPLY);
    else request.reject(error);
  }

  protected override onData(chunk: Buffer): void {
    // Commands that replies in this chunk release from the queue go out in one write; with none
    // queued there is nothing to gather.
    const corkable = !this.waiting.isEmpty && 'cork' in this.socket;
    if (corkable) this.socket.cork();
    this.framer.push(chunk);
    if (corkable) this.socket.uncork();
  }

  protected override endInput(): void {
    const partial = this.framer.end();
    if (partial !== '') this.reportProtocolError('connection ended in the middle of a message; partial message discarded', partial);
  }

  private onMessage(text: string, parsed: object | undefined): void {
    if (parsed === undefined && text.startsWith(RETURN_PREFIX) && this.relayIsNext()) {
      this.onReply(new UnparsedReturn(text), undefined);
      return;
    }
    let value: unknown;
    try {
      value = parseMonitorJson(text, parsed);
    } catch (error) {
      this.onUnreadable(text, error as ProtocolError);
      return;
    }
    const message = classify(text, value);
    switch (message.kind) {
      case 'event':
        if (message.message.event === 'SHUTDOWN') this.closeExpected = true;
        this.events.push(message.message, text);
        return;
      case 'return':
      case 'error':
        this.onReply(message, message.message.id);
        return;
      case 'greeting':
        if (this.onGreeting && this.greeting === null) {
          const onGreeting = this.onGreeting;
          this.onGreeting = undefined;
          this.greetingText = text;
          onGreeting(message.message);
        } else {
          this.reportProtocolError('unexpected second greeting', text);
        }
        return;
      case 'invalid':
        // A reply of the wrong shape still answers its request.
        this.onUnreadable(text, new ProtocolError(message.reason, text));
        return;
    }
  }

  /** A complete message that no reader makes sense of: reported, and handed to its request if it answers one (lib/qmp/unreadable-reply.ts). */
  private onUnreadable(text: string, error: ProtocolError): void {
    this.reportProtocolError(error.message, text, error);
    const answer = unreadableReply(text);
    if (answer !== undefined) this.onReply(answer.reply, answer.id);
  }

  /**
   * Whether the next id-less success reply answers a command sent to be
   * relayed: while no command carries an id, such a reply can only answer
   * the oldest in-band command, so it is handed over as QEMU's text and
   * parsed only if its value is asked for.
   */
  private relayIsNext(): boolean {
    return !this.wireIds && this.byWireId.size === 0 && this.inFlight[0]?.relay === true;
  }

  protected override completeEvents(): void {
    this.events.end();
  }

  private onReply(reply: QmpReply, id: unknown): void {
    let request: QmpRequest | undefined;
    if (id === undefined) {
      const head = this.inFlight[0];
      if (head === undefined || head.wireId !== undefined) {
        this.reportProtocolError(head ? 'reply without an id while commands carry ids' : 'reply with no command pending', reply.text);
        return;
      }
      request = this.inFlight.shift();
    } else {
      request = typeof id === 'number' ? this.byWireId.get(id) : undefined;
      if (request === undefined) {
        this.reportProtocolError('reply with an id that matches no command', reply.text);
        return;
      }
      this.byWireId.delete(id as number);
      if (!request.oob) {
        const position = this.inFlight.indexOf(request);
        if (position !== 0) this.reportProtocolError('in-band reply out of order', reply.text);
        if (position >= 0) this.inFlight.splice(position, 1);
      }
    }
    if (!request!.answer(reply) && isDebugEnabled(this.logger)) {
      this.logger.debug({ monitor: this.label, command: request!.command }, 'late reply to a settled command dropped');
    }
    if (!request!.oob && !this.waiting.isEmpty) this.pump();
  }

  protected override pump(): void {
    // Once the window has filled, refill only when half of it has been answered: QEMU still has
    // commands queued meanwhile, and each refill is then one write (and one read for QEMU) of
    // several commands instead of one per reply.
    if (this.windowFull) {
      if (this.inFlight.length > this.maxInFlight >> 1) return;
      this.windowFull = false;
    }
    while (this.inFlight.length < this.maxInFlight) {
      if (this.fdCommands !== undefined && !this.fdCommands.mayGoNext(this.waiting.peekUnsettled(), this.inFlight)) return;
      const request = this.waiting.takeUnsettled(); // one timed out or aborted before it was written is never sent
      if (request === undefined) return;
      this.putOnWire(request);
    }
  }

  private putOnWire(request: QmpRequest): void {
    this.inFlight.push(request);
    if (request.wireId !== undefined) this.byWireId.set(request.wireId, request);
    if (request.fds === undefined) this.socket.write(request.wireText);
    else this.fdCommands!.write(request, () => this.pump());
    if (this.inFlight.length >= this.maxInFlight) this.windowFull = true;
  }
}
