/**
 * A guest-agent (qemu-ga) session over one stream. The agent speaks QMP's
 * JSON without a greeting, negotiation or events, with LF line ends
 * (docs/monitor-facts.md §4); this client gives it the same Monitor interface.
 *
 * Synchronisation. On connect, and before the next command after any
 * command timed out or was aborted, the client writes a 0xFF byte (which
 * resets the agent's JSON parser, discarding any half-written input) and
 * `guest-sync-delimited` with a random id, then skips everything up to the
 * agent's `\xff{"return": ID}` (lib/qga/reader.ts). This is what libvirt
 * does: the pipe to a guest outlives clients and agent restarts, and may hold
 * anything.
 *
 * Ids. Unlike the QMP client, every command carries a qmpx id, and one runs
 * at a time. The agent answers each command once, except those that answer
 * only on failure (`guest-shutdown`, `guest-suspend-*`: "success-response":
 * false in guest-info). Such a command is followed by a `guest-ping`: if the
 * ping's reply comes first, the command succeeded silently and resolves
 * with `{}`; so does a connection that the agent closes while it runs.
 *
 *   waiting (local) ──pump──▶ [sync step] ──▶ command step (+ probe) ──reply──▶ settled
 *
 * Integers beyond ±2^53 (guest-get-time's nanoseconds) come back as bigint.
 */
import { randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import { Subject } from '../rx.js';
import { ConnectionClosedError, GreetingTimeoutError, ProtocolError, QmpError, StateError, UnsupportedError } from '../errors.js';

const AGENT_SILENT =
  'no answer to guest-sync-delimited: the guest agent may not be running in the guest, or another client holds the channel';
import { defaultLogger, isDebugEnabled, type Logger } from '../log.js';
import type { CloseInfo, ExecuteOptions, Monitor, MonitorOptions } from '../monitor.js';
import { DRIVER_ORIGIN, PendingRequest } from '../request.js';
import { MonitorStateMachine, type MonitorState } from '../state.js';
import type { QmpReply, RawRequestOptions } from '../qmp/client.js';
import { parseJsonLossless, stringifyJson } from '../qmp/json.js';
import { classify, wireCommand, type QmpEvent } from '../qmp/wire.js';
import { QgaReader } from './reader.js';

/** Commands qemu-ga answers only when they fail. */
export const QGA_SILENT_ON_SUCCESS: ReadonlySet<string> = new Set([
  'guest-shutdown',
  'guest-suspend-disk',
  'guest-suspend-ram',
  'guest-suspend-hybrid',
]);

/** Sync ids are random in [1, 2^47): well inside the agent's int64 and exact in a double. */
const MAX_SYNC_ID = 2 ** 47;
const SILENT_SUCCESS: QmpReply = { kind: 'return', text: '{"return": {}}', message: { return: {} } };

class QgaRequest extends PendingRequest<QmpReply> {
  /** The command's JSON without its id; empty for a resync. */
  argumentsJson: string | undefined;
  resync = false;
  /** Called when a timeout or abort settles the request while it is on the wire. */
  onSettledEarly: (() => void) | undefined;

  override reject(error: Error): boolean {
    if (!super.reject(error)) return false;
    this.onSettledEarly?.();
    return true;
  }
}

/** What is on the wire now: a resync, or one command (with its ping, if the command may stay silent). */
type Step =
  | { kind: 'sync'; request: QgaRequest | undefined }
  | { kind: 'command'; request: QgaRequest; wireId: number; probeWireId: number | undefined };

/**
 * The Monitor for a guest agent. Built by connect() with `protocol: 'qga'`;
 * `start()` must finish (the first resync) before commands are accepted.
 */
export class QgaMonitor implements Monitor {
  readonly protocol = 'qga' as const;
  readonly greeting = null;
  readonly capabilities: readonly string[] = [];

  private readonly eventsSubject = new Subject<QmpEvent>();
  /** The agent sends no events (docs/monitor-facts.md §4); anything event-shaped it did send would appear here. */
  readonly events$: Observable<QmpEvent> = this.eventsSubject.asObservable();
  private readonly protocolErrorsSubject = new Subject<ProtocolError>();
  readonly protocolErrors$ = this.protocolErrorsSubject.asObservable();
  private readonly stateMachine: MonitorStateMachine;
  readonly state$: Observable<MonitorState>;
  readonly closed: Promise<CloseInfo>;

  private readonly logger: Logger;
  private readonly reader: QgaReader;
  private readonly commandTimeoutMs: number | undefined;
  private waiting: QgaRequest[] = [];
  private waitingHead = 0;
  private step: Step | undefined;
  private needsResync = true;
  private nextWireId = 1;
  private closedByCaller = false;
  private resolveClosed!: (info: CloseInfo) => void;

  constructor(
    private readonly socket: Duplex,
    options: MonitorOptions,
    /** Names the agent in logs and errors. */
    readonly label: string,
  ) {
    this.logger = options.logger ?? defaultLogger;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.stateMachine = new MonitorStateMachine(this.logger, label);
    this.state$ = this.stateMachine.state$;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.reader = new QgaReader(
      {
        message: (text) => this.onMessage(text),
        synced: () => this.onSynced(),
        discarded: (text) => {
          if (isDebugEnabled(this.logger)) this.logger.debug({ monitor: this.label, text: text.slice(0, 200) }, 'stale agent output skipped by resync');
        },
        garbage: (text) => this.reportProtocolError('bytes outside any JSON object', text),
        oversize: (bytes, limit) => {
          const error = new ProtocolError(`message of ${bytes}+ bytes exceeds maxMessageBytes (${limit}); connection closed`);
          this.reportProtocolError(error.message, '', error);
          this.finish({ expected: false, cause: error });
        },
      },
      { maxMessageBytes: options.maxMessageBytes },
    );
  }

  /**
   * Resynchronises with the agent. Resolves when ready; rejects with
   * GreetingTimeoutError (no agent answering: not running in the guest, or
   * another client holds the channel) or ConnectionClosedError, and then the
   * monitor is closed.
   */
  async start(timeoutMs: number): Promise<void> {
    this.stateMachine.transition('negotiating', 'resynchronising with guest-sync-delimited');
    this.attach();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new GreetingTimeoutError(timeoutMs, '', AGENT_SILENT)), timeoutMs);
    });
    try {
      await Promise.race([this.enqueue(this.newRequest('guest-sync-delimited', {}, true)), deadline]);
      this.stateMachine.transition('ready', 'agent synchronised');
    } catch (error) {
      this.finish({ expected: false, cause: error as Error });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs an agent command and resolves with its `return` value (integers
   * beyond ±2^53 as bigint). Rejects with QmpError (the agent's error),
   * UnsupportedError (not ready, `oob`, bad arguments), TimeoutError,
   * AbortError or ConnectionClosedError.
   */
  async execute<T = unknown>(command: string, args?: object, opts: ExecuteOptions = {}): Promise<T> {
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
      throw new UnsupportedError(`${command}: arguments must be a JSON object, got ${Array.isArray(args) ? 'an array' : typeof args}`);
    }
    const reply = await this.send(command, args === undefined ? undefined : stringifyJson(args), opts);
    if (reply.kind === 'error') throw new QmpError(reply.message.error.class, reply.message.error.desc, command);
    return reply.message.return as T;
  }

  /**
   * Sends a command whose arguments are already serialised JSON (kept as
   * given) and resolves with the agent's reply, error replies included.
   * Rejects as execute() does, except for QmpError.
   */
  send(command: string, argumentsJson: string | undefined, opts: RawRequestOptions = {}): Promise<QmpReply> {
    const request = this.newRequest(command, opts, false);
    request.argumentsJson = argumentsJson;
    const state = this.stateMachine.current;
    if (opts.oob) request.reject(new UnsupportedError(`${command}: the guest agent has no out-of-band execution`));
    else if (state === 'closed') request.reject(new ConnectionClosedError(`${command}: the agent connection is closed`));
    else if (state !== 'ready') request.reject(new StateError(`${command}: the agent is not ready (${state})`, state));
    else return this.enqueue(request);
    return request.promise;
  }

  /** The guest agent has no human monitor: always rejects with UnsupportedError. */
  async hmp(commandLine: string): Promise<string> {
    throw new UnsupportedError(`${commandLine}: the guest agent has no human monitor; use execute()`);
  }

  /**
   * Resynchronises now, after the commands already queued: useful when the
   * agent in the guest may have restarted. Resolves when the agent has
   * answered; rejects like execute().
   */
  async resync(opts: RawRequestOptions = {}): Promise<void> {
    const state = this.stateMachine.current;
    if (state === 'closed') throw new ConnectionClosedError('resync: the agent connection is closed');
    if (state !== 'ready') throw new StateError(`resync: the agent is not ready (${state})`, state);
    await this.enqueue(this.newRequest('guest-sync-delimited', opts, true));
  }

  close(): Promise<void> {
    if (this.stateMachine.current !== 'closed') {
      this.closedByCaller = true;
      this.finish({ expected: true }, new ConnectionClosedError('the agent connection was closed by the caller'));
    }
    return this.closed.then(() => undefined);
  }

  /** Requests not yet settled (for tests and diagnostics). */
  get pendingCount(): number {
    let count = this.step?.request !== undefined && !this.step.request.settled ? 1 : 0;
    for (let i = this.waitingHead; i < this.waiting.length; i++) if (!this.waiting[i]!.settled) count++;
    return count;
  }

  private newRequest(command: string, opts: RawRequestOptions, resync: boolean): QgaRequest {
    const request = new QgaRequest(command, opts.origin ?? DRIVER_ORIGIN, opts, this.commandTimeoutMs);
    request.resync = resync;
    return request;
  }

  private enqueue(request: QgaRequest): Promise<QmpReply> {
    this.waiting.push(request);
    this.pump();
    return request.promise;
  }

  private pump(): void {
    while (this.step === undefined && this.waitingHead < this.waiting.length) {
      const request = this.waiting[this.waitingHead]!;
      if (request.settled) {
        this.waitingHead++; // timed out or aborted before it was written: never sent
        continue;
      }
      if (request.resync || this.needsResync) {
        if (request.resync) this.waitingHead++;
        this.beginSync(request.resync ? request : undefined);
        break;
      }
      this.waitingHead++;
      this.beginCommand(request);
    }
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }

  private beginSync(request: QgaRequest | undefined): void {
    const syncId = randomInt(1, MAX_SYNC_ID);
    this.step = { kind: 'sync', request };
    // A sync is never abandoned: a later one would face the same backlog. The
    // request may time out; the step stays until the agent answers.
    this.reader.awaitSync(syncId);
    this.socket.write(Buffer.from(`\xff${wireCommand('guest-sync-delimited', `{"id":${syncId}}`, false)}\n`, 'latin1'));
  }

  private beginCommand(request: QgaRequest): void {
    const wireId = this.nextWireId++;
    const probeWireId = QGA_SILENT_ON_SUCCESS.has(request.command) ? this.nextWireId++ : undefined;
    const step: Step = { kind: 'command', request, wireId, probeWireId };
    this.step = step;
    request.onSettledEarly = () => {
      if (this.step !== step) return;
      // Its reply may still come; a resync before the next command skips it.
      this.step = undefined;
      this.needsResync = true;
      this.pump();
    };
    let wire = `${wireCommand(request.command, request.argumentsJson, false, wireId)}\n`;
    if (probeWireId !== undefined) wire += `${wireCommand('guest-ping', undefined, false, probeWireId)}\n`;
    this.socket.write(wire);
  }

  private onSynced(): void {
    const step = this.step;
    this.needsResync = false;
    this.step = undefined;
    if (step?.kind === 'sync') step.request?.resolve({ kind: 'return', text: '{"return": {}}', message: { return: {} } });
    this.pump();
  }

  private attach(): void {
    this.socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    this.socket.on('end', () => this.finish({ expected: false }));
    this.socket.on('error', (error: Error) => this.finish({ expected: false, cause: error }));
    this.socket.on('close', () => this.finish({ expected: false }));
    this.socket.resume();
  }

  private onMessage(text: string): void {
    let value: unknown;
    try {
      value = parseJsonLossless(text);
    } catch (error) {
      this.reportProtocolError(`unparseable JSON from the agent: ${(error as Error).message}`, text);
      return;
    }
    const message = classify(text, value);
    if (message.kind === 'event') {
      this.eventsSubject.next(message.message);
      return;
    }
    if (message.kind !== 'return' && message.kind !== 'error') {
      this.reportProtocolError(message.kind === 'invalid' ? message.reason : `unexpected ${message.kind} from the agent`, text);
      return;
    }
    const step = this.step;
    const id = message.message.id;
    if (step?.kind !== 'command' || (id !== step.wireId && id !== step.probeWireId)) {
      this.reportProtocolError(id === undefined ? 'reply without an id' : 'reply with an id that matches no command', text);
      return;
    }
    if (id === step.wireId) {
      if (!step.request.resolve(message) && isDebugEnabled(this.logger)) {
        this.logger.debug({ monitor: this.label, command: step.request.command }, 'late reply to a settled command dropped');
      }
      if (step.probeWireId !== undefined) return; // the ping's reply is still to come
    } else {
      step.request.resolve(SILENT_SUCCESS); // the ping came back first: the command succeeded without a word
    }
    this.step = undefined;
    this.pump();
  }

  private reportProtocolError(message: string, evidence: string, error = new ProtocolError(message, evidence)): void {
    this.logger.warn({ monitor: this.label, evidence: evidence.slice(0, 200) }, message);
    this.protocolErrorsSubject.next(error);
  }

  /** Ends the session once: settles every request, completes every stream. */
  private finish(info: CloseInfo, pendingError?: Error): void {
    if (this.stateMachine.current === 'closed') return;
    const partial = this.reader.end();
    if (partial !== '') this.reportProtocolError('connection ended in the middle of a message; partial message discarded', partial);
    const expected = info.expected || this.closedByCaller;
    const error =
      pendingError ??
      new ConnectionClosedError(
        expected ? 'the agent closed the connection' : `the agent connection was lost${info.cause ? `: ${info.cause.message}` : ''}`,
        { cause: info.cause },
      );
    const step = this.step;
    const pending = [...(step?.request ? [step.request] : []), ...this.waiting.slice(this.waitingHead)];
    this.step = undefined;
    this.waiting = [];
    this.waitingHead = 0;
    this.stateMachine.transition('closed', info.cause?.message ?? (expected ? 'closed' : 'connection lost'));
    for (const request of pending) {
      // A shutdown or suspend that the agent answers by going away has succeeded.
      const silentSuccess = step?.kind === 'command' && step.request === request && step.probeWireId !== undefined && !this.closedByCaller;
      if (silentSuccess) request.resolve(SILENT_SUCCESS);
      else request.reject(error);
    }
    this.eventsSubject.complete();
    this.protocolErrorsSubject.complete();
    this.socket.destroy();
    this.resolveClosed(info.cause && !expected ? { expected, cause: info.cause } : { expected });
  }
}
