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
 * with `{}`; so does a connection that the agent closes while it runs, and
 * that close is an expected one.
 *
 *   waiting (local) ──pump──▶ [sync step] ──▶ command step (+ probe) ──reply──▶ settled
 *
 * Integers beyond ±2^53 (guest-get-time's nanoseconds) come back as bigint.
 */
import { randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { GreetingTimeoutError, QmpError, UnsupportedError } from '../errors.js';
import { isDebugEnabled } from '../log.js';
import type { ExecuteOptions, GuestAgent, MonitorOptions, QmpReply, RawRequestOptions } from '../contract.js';
import { PendingRequest } from '../request.js';
import { EVIDENCE_CHARS, MonitorSession } from '../session/monitor-session.js';
import { parseJsonLossless, stringifyJson } from '../qmp/json.js';
import { classify, wireCommand } from '../qmp/wire.js';
import { QgaReader } from './reader.js';

const AGENT_SILENT =
  'no answer to guest-sync-delimited: the guest agent may not be running in the guest, or another client holds the channel';

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
export class QgaMonitor extends MonitorSession<QgaRequest> implements GuestAgent {
  readonly protocol = 'qga' as const;
  readonly greeting = null;
  readonly banner = null;
  readonly capabilities: readonly string[] = [];
  readonly raw: GuestAgent = this;
  readonly relay = null;
  // events$: the agent sends no events (docs/monitor-facts.md §4); anything event-shaped it did send appears there.

  private readonly reader: QgaReader;
  private step: Step | undefined;
  private needsResync = true;
  private nextWireId = 1;

  constructor(socket: Duplex, options: MonitorOptions, label: string) {
    super(socket, options, label, 'agent');
    this.reader = new QgaReader(
      {
        message: (text) => this.onMessage(text),
        synced: () => this.onSynced(),
        discarded: (text) => {
          if (isDebugEnabled(this.logger)) this.logger.debug({ monitor: this.label, text: text.slice(0, EVIDENCE_CHARS) }, 'stale agent output skipped by resync');
        },
        garbage: (text) => this.reportProtocolError('bytes outside any JSON object', text),
        oversize: (bytes, limit) => this.failOversize('message', bytes, limit),
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
  start(timeoutMs: number): Promise<void> {
    this.stateMachine.transition('negotiating', 'resynchronising with guest-sync-delimited');
    return this.startSession(timeoutMs, Buffer.alloc(0), async () => {
      await this.enqueue(this.newRequest('guest-sync-delimited', {}, true));
    });
  }

  protected override startTimeoutError(timeoutMs: number): Error {
    return new GreetingTimeoutError(timeoutMs, '', AGENT_SILENT);
  }

  protected override get closedDuringStartMessage(): string {
    return 'the agent closed the connection before it was synchronised';
  }

  override get fdPassing(): boolean {
    return false;
  }

  protected override fdRefusal(command: string): Error {
    return new UnsupportedError(`${command}: the guest agent takes no file descriptors (its channel into the guest cannot carry them)`);
  }

  protected override noOobMessage(command: string): string {
    return `${command}: the guest agent has no out-of-band execution`;
  }

  /**
   * Runs an agent command and resolves with its `return` value (integers
   * beyond ±2^53 as bigint). Rejects with QmpError (the agent's error),
   * UnsupportedError (`oob`, bad arguments), StateError (not ready),
   * TimeoutError, AbortError or ConnectionClosedError.
   */
  async execute<T = unknown>(command: string, args?: object, opts: ExecuteOptions = {}): Promise<T> {
    this.checkArguments(command, args);
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
    return this.admit(request, opts);
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
    const refusal = this.refusalOf('resync', opts);
    if (refusal !== undefined) throw refusal;
    await this.enqueue(this.newRequest('guest-sync-delimited', opts, true));
  }

  private newRequest(command: string, opts: RawRequestOptions, resync: boolean): QgaRequest {
    const request = new QgaRequest(command, this.originOf(opts), opts, this.commandTimeoutMs);
    request.resync = resync;
    return request;
  }

  private enqueue(request: QgaRequest): Promise<QmpReply> {
    this.waiting.push(request);
    this.pump();
    return request.promise;
  }

  protected override pump(): void {
    if (this.step !== undefined) return;
    const request = this.waiting.peekUnsettled(); // one timed out or aborted before it was written is never sent
    if (request === undefined) return;
    if (request.resync || this.needsResync) {
      if (request.resync) this.waiting.takeUnsettled();
      this.beginSync(request.resync ? request : undefined);
    } else {
      this.waiting.takeUnsettled();
      this.beginCommand(request);
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
    // A shutdown or suspend may be answered by the agent going away.
    if (probeWireId !== undefined) this.closeExpected = true;
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
    if (step?.kind === 'sync') step.request?.resolve(SILENT_SUCCESS);
    this.pump();
  }

  protected override onData(chunk: Buffer): void {
    this.reader.push(chunk);
  }

  protected override endInput(): void {
    const partial = this.reader.end();
    if (partial !== '') this.reportProtocolError('connection ended in the middle of a message; partial message discarded', partial);
  }

  protected override writtenPendingCount(): number {
    return this.step?.request !== undefined && !this.step.request.settled ? 1 : 0;
  }

  protected override takeWritten(): QgaRequest[] {
    const step = this.step;
    this.step = undefined;
    if (step?.kind === 'command' && step.probeWireId !== undefined) this.silentOnClose = step.request;
    return step?.request !== undefined ? [step.request] : [];
  }

  /** A shutdown or suspend running when the agent went away: it has succeeded. */
  private silentOnClose: QgaRequest | undefined;

  protected override settleOnClose(request: QgaRequest, error: Error): void {
    if (request === this.silentOnClose && !this.closedByCaller) request.resolve(SILENT_SUCCESS);
    else request.reject(error);
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
      // It answered: a shutdown or suspend that failed leaves the agent running.
      if (step.probeWireId !== undefined && message.kind === 'error') this.closeExpected = false;
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
}
