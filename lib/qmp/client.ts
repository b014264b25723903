/**
 * A QMP session over one stream: greeting, negotiation, the ordered request
 * queue, events, and close.
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
 * filling so OOB commands can always overtake.
 */
import type { Duplex } from 'node:stream';
import { Subject, type Observable } from 'rxjs';
import { ConnectionClosedError, GreetingTimeoutError, HmpError, ProtocolError, QmpError, StateError, UnsupportedError } from '../errors.js';
import { defaultLogger, isDebugEnabled, type Logger } from '../log.js';
import type { CloseInfo, ExecuteOptions, HmpOptions, Monitor, MonitorOptions } from '../monitor.js';
import { DRIVER_ORIGIN, PendingRequest, type RequestOrigin, type RequestOutcome } from '../request.js';
import { MonitorStateMachine, type MonitorState } from '../state.js';
import { JsonObjectFramer } from './framer.js';
import { readableMembers } from './qemu-output.js';
import { stringifyJson } from './json.js';
import { classify, parseMonitorJson, RETURN_PREFIX, UnparsedReturn, type QmpEvent, type QmpGreeting, type WireMessage } from './wire.js';
import { hmpErrorText } from '../hmp/error-text.js';
import { ArgumentChecker } from '../qapi/validate.js';
import { normaliseHmpOutput } from '../hmp/output.js';

export const DEFAULT_MAX_IN_FLIGHT = 8;

/** How a wire id of qmpx's looks in QEMU's text: a small decimal integer. */
const WIRE_ID = /^[1-9][0-9]{0,15}$/;

/** A reply exactly as QEMU sent it, return or error. */
export type QmpReply = Extract<WireMessage, { kind: 'return' | 'error' }>;

/** An event with the exact text QEMU sent, for consumers that forward bytes. */
export interface QmpEventFrame {
  event: QmpEvent;
  text: string;
}

export interface RawRequestOptions extends ExecuteOptions {
  origin?: RequestOrigin;
}

class QmpRequest extends PendingRequest<QmpReply> {
  wireId: number | undefined;
  wireText = '';
  oob = false;
  /** Sent by sendWithCallback: a success reply may be handed over unparsed. */
  relay = false;
}

/** Whether the monitor is expected to go away after `command` (a comparison: a Set would hash every fresh name). */
function isClosingCommand(command: string): boolean {
  return command === 'quit';
}

export class QmpMonitor implements Monitor {
  readonly protocol = 'qmp' as const;
  greeting: QmpGreeting | null = null;
  /** The greeting exactly as QEMU sent it (without its line end), for proxies that greet downstream. */
  greetingText: string | null = null;
  capabilities: readonly string[] = [];

  private readonly eventsSubject = new Subject<QmpEvent>();
  readonly events$: Observable<QmpEvent> = this.eventsSubject.asObservable();
  private readonly eventFramesSubject = new Subject<QmpEventFrame>();
  /** Events with their exact wire text, in wire order, for consumers that forward bytes. */
  readonly eventFrames$: Observable<QmpEventFrame> = this.eventFramesSubject.asObservable();
  private readonly protocolErrorsSubject = new Subject<ProtocolError>();
  readonly protocolErrors$ = this.protocolErrorsSubject.asObservable();
  private readonly stateMachine: MonitorStateMachine;
  readonly state$: Observable<MonitorState>;
  readonly closed: Promise<CloseInfo>;

  private readonly logger: Logger;
  private readonly framer: JsonObjectFramer;
  private readonly maxInFlight: number;
  /** The window filled up; pump() waits until half of it is answered. */
  private windowFull = false;
  private readonly wireIds: boolean;
  private readonly commandTimeoutMs: number | undefined;
  private readonly offerOob: boolean;
  private waiting: QmpRequest[] = [];
  private waitingHead = 0;
  private readonly inFlight: QmpRequest[] = [];
  private readonly byWireId = new Map<number, QmpRequest>();
  private nextWireId = 1;
  private closeExpected = false;
  private closedByCaller = false;
  private resolveClosed!: (info: CloseInfo) => void;
  private onGreeting: ((greeting: QmpGreeting) => void) | undefined;
  /**
   * Events are held from connect until the caller has had the turn in which
   * connect() resolves: otherwise an event arriving in the same chunk as the
   * negotiation reply would be emitted before anyone could subscribe.
   */
  private heldEvents: QmpEventFrame[] | undefined = [];
  private releaseScheduled = false;
  /** Checks arguments against this QEMU's schema when validation or a compat policy asks for it. */
  readonly argumentChecker: ArgumentChecker;

  constructor(
    private readonly socket: Duplex,
    options: MonitorOptions,
    /** Names the monitor in logs and errors. */
    readonly label: string,
  ) {
    this.logger = options.logger ?? defaultLogger;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    this.wireIds = options.wireIds ?? false;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.offerOob = options.oob ?? true;
    this.argumentChecker = new ArgumentChecker(options, () => this.querySchema(), this.logger);
    this.stateMachine = new MonitorStateMachine(this.logger, label);
    this.state$ = this.stateMachine.state$;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.framer = new JsonObjectFramer(
      {
        message: (text, parsed) => this.onMessage(text, parsed),
        garbage: (text) => this.reportProtocolError(`bytes outside any JSON object`, text),
        oversize: (bytes, limit) => {
          const error = new ProtocolError(`message of ${bytes}+ bytes exceeds maxMessageBytes (${limit}); connection closed`);
          this.reportProtocolError(error.message, '', error);
          this.finish({ expected: false, cause: error });
        },
        takesUnparsed: () => this.relayIsNext(),
      },
      { maxMessageBytes: options.maxMessageBytes, unparsedPrefix: RETURN_PREFIX },
    );
  }

  /**
   * Reads the greeting (which may begin in `firstBytes`) and negotiates.
   * Resolves when ready; rejects with GreetingTimeoutError or QmpError.
   */
  async start(firstBytes: Buffer, greetingTimeoutMs: number): Promise<void> {
    const greeting = new Promise<QmpGreeting>((resolve, reject) => {
      const timer = setTimeout(() => reject(new GreetingTimeoutError(greetingTimeoutMs)), greetingTimeoutMs);
      this.onGreeting = (message) => {
        clearTimeout(timer);
        resolve(message);
      };
      void this.closed.then((info) => {
        clearTimeout(timer);
        reject(new ConnectionClosedError('the monitor closed the connection during the greeting', { cause: info.cause }));
      });
    });
    this.attach(firstBytes);
    this.greeting = await greeting;
    this.stateMachine.transition('negotiating', 'greeting received');
    const enable = this.offerOob && this.greeting.QMP.capabilities.includes('oob') ? ['oob'] : [];
    const reply = await this.send('qmp_capabilities', enable.length > 0 ? stringifyJson({ enable }) : undefined, {}, true);
    if (reply.kind === 'error') {
      const { class: errorClass, desc } = reply.message.error;
      throw new QmpError(errorClass, desc, 'qmp_capabilities');
    }
    this.capabilities = enable;
    this.stateMachine.transition('ready', 'capabilities negotiated');
    this.releaseHeldEventsAfterCallerTurn();
  }

  private releaseHeldEventsAfterCallerTurn(): void {
    this.socket.pause();
    this.releaseScheduled = true;
    setImmediate(() => {
      const held = this.heldEvents ?? [];
      this.heldEvents = undefined;
      for (const frame of held) this.emitEvent(frame.event, frame.text);
      if (this.stateMachine.current === 'closed') this.completeEvents();
      else this.socket.resume();
    });
  }

  async execute<T = unknown>(command: string, args?: object, opts: ExecuteOptions = {}): Promise<T> {
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
      throw new UnsupportedError(`${command}: arguments must be a JSON object, got ${Array.isArray(args) ? 'an array' : typeof args}`);
    }
    const checking = this.argumentChecker.check(command, args, opts.validate);
    if (checking !== undefined) await checking;
    const reply = await this.send(command, args === undefined ? undefined : stringifyJson(args), opts);
    if (reply.kind === 'error') {
      throw new QmpError(reply.message.error.class, reply.message.error.desc, command);
    }
    return reply.message.return as T;
  }

  /** QEMU's schema, asked past the argument checks (which need it). */
  private async querySchema(): Promise<unknown> {
    const reply = await this.send('query-qmp-schema', undefined);
    if (reply.kind === 'error') throw new QmpError(reply.message.error.class, reply.message.error.desc, 'query-qmp-schema');
    return reply.message.return;
  }

  async hmp(commandLine: string, opts: HmpOptions = {}): Promise<string> {
    // Same text as on a raw HMP socket: CRLF → LF (lib/hmp/output.ts).
    const output = normaliseHmpOutput(await this.execute<string>('human-monitor-command', { 'command-line': commandLine }, opts));
    if (opts.throwOnError && hmpErrorText(output) !== null) throw new HmpError(commandLine, output);
    return output;
  }

  /**
   * Sends a command whose arguments are already serialised JSON (kept as
   * given, so number tokens survive exactly) and resolves with QEMU's reply,
   * error replies included. Rejects with UnsupportedError, TimeoutError,
   * AbortError or ConnectionClosedError.
   */
  send(command: string, argumentsJson: string | undefined, opts: RawRequestOptions = {}, negotiating = false): Promise<QmpReply> {
    const request = new QmpRequest(command, opts.origin ?? DRIVER_ORIGIN, opts, this.commandTimeoutMs);
    this.enqueue(request, argumentsJson, opts, negotiating);
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
    const request = new QmpRequest(command, opts.origin ?? DRIVER_ORIGIN, opts, this.commandTimeoutMs, onSettled);
    request.relay = true;
    this.enqueue(request, argumentsJson, opts, false);
  }

  private enqueue(request: QmpRequest, argumentsJson: string | undefined, opts: RawRequestOptions, negotiating: boolean): void {
    const { command } = request;
    const refusal = this.refusalOf(command, opts, negotiating);
    if (refusal !== undefined) {
      queueMicrotask(() => request.reject(refusal));
      return;
    }
    request.oob = opts.oob === true;
    if (request.oob || this.wireIds) request.wireId = this.nextWireId++;
    request.wireText = wireCommand(command, argumentsJson, request.oob, request.wireId);
    if (isClosingCommand(command)) this.closeExpected = true;
    if (request.oob) {
      this.byWireId.set(request.wireId!, request);
      this.socket.write(request.wireText);
    } else if (this.waitingHead === this.waiting.length && !this.windowFull && this.inFlight.length < this.maxInFlight) {
      this.putOnWire(request); // nothing queued and room in the window: what pump() would do, without the queue
    } else {
      this.waiting.push(request);
      this.pump();
    }
  }

  /** Why `command` cannot be written now, if it cannot. */
  private refusalOf(command: string, opts: RawRequestOptions, negotiating: boolean): Error | undefined {
    const state = this.stateMachine.current;
    if (state === 'closed') return new ConnectionClosedError(`${command}: the monitor connection is closed`);
    if (state !== 'ready' && !negotiating) return new StateError(`${command}: the monitor is not ready (${state})`, state);
    if (opts.oob && !this.capabilities.includes('oob')) {
      return new UnsupportedError(`${command}: out-of-band execution was not negotiated with this monitor`);
    }
    return undefined;
  }

  close(): Promise<void> {
    if (this.stateMachine.current !== 'closed') {
      this.closedByCaller = true;
      this.finish({ expected: true }, new ConnectionClosedError('the monitor connection was closed by the caller'));
    }
    return this.closed.then(() => undefined);
  }

  /** Requests not yet settled (for tests and diagnostics). */
  get pendingCount(): number {
    let count = this.byWireId.size;
    for (const request of this.inFlight) if (!request.settled && request.wireId === undefined) count++;
    for (let i = this.waitingHead; i < this.waiting.length; i++) if (!this.waiting[i]!.settled) count++;
    return count;
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

  private onData(chunk: Buffer): void {
    // Replies released by this chunk go out in one write.
    const corkable = 'cork' in this.socket;
    if (corkable) this.socket.cork();
    this.framer.push(chunk);
    if (corkable) this.socket.uncork();
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
        if (this.heldEvents) this.heldEvents.push({ event: message.message, text });
        else this.emitEvent(message.message, text);
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

  /**
   * A complete message that no reader makes sense of. QEMU writes one reply
   * per command; if this one's top-level keys (as far as they can be read)
   * name a reply (`return` or `error`), it answers a request (by its
   * numeric id, else the oldest in-band one), which gets QEMU's text as an
   * UnparsedReturn whose value throws ProtocolError. Dropped instead, it
   * would leave its request unanswered and hand every later reply to the
   * request before it. Anything else (an event, a greeting, an object with
   * no reply's key) answers nothing: it is reported, as any message that is
   * not a reply is.
   */
  private onUnreadable(text: string, error: ProtocolError): void {
    this.reportProtocolError(error.message, text, error);
    const members = readableMembers(text);
    if (!members.some(({ key }) => key === 'return' || key === 'error')) return;
    if (members.some(({ key }) => key === 'event' || key === 'QMP')) return;
    const idMember = members.find(({ key }) => key === 'id');
    if (idMember === undefined) return this.onReply(new UnparsedReturn(text), undefined);
    const idText = text.slice(idMember.start, idMember.end);
    const wireId = WIRE_ID.test(idText) ? Number(idText) : undefined;
    this.onReply(new UnparsedReturn(text, wireId), wireId ?? idText);
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

  private emitEvent(event: QmpEvent, text: string): void {
    this.eventsSubject.next(event);
    if (this.eventFramesSubject.observed) this.eventFramesSubject.next({ event, text });
  }

  private completeEvents(): void {
    this.eventsSubject.complete();
    this.eventFramesSubject.complete();
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
    if (!request!.resolve(reply) && isDebugEnabled(this.logger)) {
      this.logger.debug({ monitor: this.label, command: request!.command }, 'late reply to a settled command dropped');
    }
    if (!request!.oob) this.pump();
  }

  private pump(): void {
    // Once the window has filled, refill only when half of it has been answered: QEMU still has
    // commands queued meanwhile, and each refill is then one write (and one read for QEMU) of
    // several commands instead of one per reply.
    if (this.windowFull) {
      if (this.inFlight.length > this.maxInFlight >> 1) return;
      this.windowFull = false;
    }
    while (this.inFlight.length < this.maxInFlight && this.waitingHead < this.waiting.length) {
      const request = this.waiting[this.waitingHead++]!;
      if (request.settled) continue; // timed out or aborted before it was written: never sent
      this.putOnWire(request);
    }
    // Written requests must not stay reachable from here: each holds its settled promise and reply, and
    // keeping a thousand of them alive makes every scavenge copy and promote them.
    if (this.waitingHead === 0) return;
    if (this.waitingHead === this.waiting.length) {
      this.waiting.length = 0;
      this.waitingHead = 0;
    } else if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }

  private putOnWire(request: QmpRequest): void {
    this.inFlight.push(request);
    if (request.wireId !== undefined) this.byWireId.set(request.wireId, request);
    this.socket.write(request.wireText);
    if (this.inFlight.length >= this.maxInFlight) this.windowFull = true;
  }

  private reportProtocolError(message: string, evidence: string, error = new ProtocolError(message, evidence)): void {
    this.logger.warn({ monitor: this.label, evidence: evidence.slice(0, 200) }, message);
    this.protocolErrorsSubject.next(error);
  }

  /** Ends the session once: settles every request, completes every stream. */
  private finish(info: CloseInfo, pendingError?: Error): void {
    if (this.stateMachine.current === 'closed') return;
    const partial = this.framer.end();
    if (partial !== '') this.reportProtocolError('connection ended in the middle of a message; partial message discarded', partial);
    const expected = info.expected || this.closedByCaller;
    const error =
      pendingError ??
      new ConnectionClosedError(
        expected ? 'the monitor closed the connection' : `the monitor connection was lost${info.cause ? `: ${info.cause.message}` : ''}`,
        { cause: info.cause },
      );
    const pending = [...this.inFlight, ...this.waiting.slice(this.waitingHead), ...this.byWireId.values()];
    this.inFlight.length = 0;
    this.waiting = [];
    this.waitingHead = 0;
    this.byWireId.clear();
    this.stateMachine.transition('closed', info.cause?.message ?? (expected ? 'closed' : 'connection lost'));
    for (const request of pending) {
      // quit's reply can be lost when QEMU exits with it unread (docs/monitor-facts.md §2): the close is its answer.
      if (isClosingCommand(request.command) && !this.closedByCaller) {
        request.resolve({ kind: 'return', text: '{"return": {}}', message: { return: {} } });
      } else {
        request.reject(error);
      }
    }
    // Held events still go out on the caller's turn; the stream completes after them.
    if (!this.releaseScheduled || this.heldEvents === undefined) this.completeEvents();
    this.protocolErrorsSubject.complete();
    this.socket.destroy();
    this.resolveClosed(info.cause && !expected ? { expected, cause: info.cause } : { expected });
  }
}

/** Letters, digits, '_' and '-' (every QAPI command name): nothing to escape. A loop, not a regex: it runs once per command. */
function isPlainCommandName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    const plain =
      (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39) || code === 0x5f || code === 0x2d;
    if (!plain) return false;
  }
  return true;
}

/**
 * Builds the wire text of a command; the name is JSON-escaped, the arguments
 * already JSON. QEMU's parser needs no line end, but one command per line
 * keeps wire traces and line-oriented peers readable.
 */
export function wireCommand(command: string, argumentsJson: string | undefined, oob: boolean, wireId?: number): string {
  // JSON.stringify costs a µs on a cold path, and a plain name needs no escaping.
  let text = `{"${oob ? 'exec-oob' : 'execute'}":${isPlainCommandName(command) ? `"${command}"` : JSON.stringify(command)}`;
  if (argumentsJson !== undefined) text += `,"arguments":${argumentsJson}`;
  if (wireId !== undefined) text += `,"id":${wireId}`;
  return text + '}\n';
}
