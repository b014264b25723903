/**
 * One downstream QMP client, made to see exactly what QEMU would show it
 * (docs/design.md invariant 7).
 *
 *   queued ──greet──▶ greeted ──qmp_capabilities──▶ capabilities-sent ──reply written──▶ negotiated
 *     │                  │                                 │                                 │
 *     └──────────────────┴───────── close / upstream lost ─┴─────────────────────────────────┴──▶ closed
 *
 * - A client that connects while the upstream is down waits ungreeted, as a
 *   second client of QEMU's own socket does, and is greeted with the
 *   upstream's greeting bytes once a link is up.
 * - Input is cut into messages exactly as QEMU's parser cuts it
 *   (lib/qemu-json/streamer.ts). Before negotiation every message is answered here;
 *   after it, well-formed commands go upstream without the client's id
 *   (invariant 3) and everything QEMU would reject before dispatch (not
 *   JSON, not an object, bad members, nesting) is answered here with
 *   QEMU's text.
 * - Replies leave in the order the commands came, exec-oob replies
 *   excepted (lib/proxy/qmp-forwarding.ts).
 * - Events are written only once the qmp_capabilities reply has reached the
 *   kernel (go-qemu drops what shares a read with that reply), and in
 *   upstream wire order with this client's replies: replies are handed over
 *   synchronously as QEMU's bytes are read (sendWithCallback), and so are
 *   events.
 *
 * Input waits and is judged in lib/proxy/qmp-intake.ts; the fds a client
 * sends are matched to their messages in lib/proxy/client-fds.ts.
 */
import type { Socket } from 'node:net';
import type { FdStream } from '../fd/stream.js';
import { argumentProblem } from './argument-checks.js';
import { ClientFds, FDS_OVER_CAP_DESC, fdVerdict, type InputItem } from './client-fds.js';
import type { AuditOutcome } from './audit.js';
import { Outbound } from './outbound.js';
import { errorReplyText, returnReplyText } from '../qemu-json/replies.js';
import { QemuJsonStreamer } from '../qemu-json/streamer.js';
import { ReplyOrder, UPSTREAM_LOST_DESC, UpstreamForwarder } from './qmp-forwarding.js';
import { judgeMessage } from './qmp-intake.js';
import { Fifo } from '../fifo.js';
import { reportInputBudgetSpent, reportNegotiationTimeout, reportOversizedMessage, reportSlowConsumer } from './qmp-disconnects.js';
import { beforeNegotiation, greetingFor, negotiate, type ClientCommand } from './qmp-request.js';
import type { StateMachine, Transitions } from '../state.js';
import {
  abortControllerForMany,
  allocateSessionId,
  downstreamOrigin,
  sessionStateMachine,
  type DownstreamSession,
  type SessionContext,
} from './session.js';
import type { UpstreamLink } from './upstream.js';

export type QmpSessionState = 'queued' | 'greeted' | 'capabilities-sent' | 'negotiated' | 'closed';

const NEXT_STATES: Transitions<QmpSessionState> = {
  queued: ['greeted', 'closed'],
  greeted: ['capabilities-sent', 'closed'],
  'capabilities-sent': ['negotiated', 'closed'],
  negotiated: ['closed'],
  closed: [],
};

/** How long a greeted client may take to send qmp_capabilities before it is disconnected. */
export const DEFAULT_NEGOTIATION_TIMEOUT_MS = 30_000;

export class QmpSession implements DownstreamSession {
  readonly id = allocateSessionId();
  readonly protocol = 'qmp' as const;
  private readonly machine: StateMachine<QmpSessionState>;
  private linkValue: UpstreamLink | undefined;
  private readonly outbound: Outbound;
  private readonly streamer: QemuJsonStreamer;
  /** Parsed input not yet acted on, oldest first: it waits here while the client has maxPendingCommands upstream or is not reading its replies. */
  private readonly inbox = new Fifo<InputItem>();
  private readonly replies: ReplyOrder;
  private readonly forwarder: UpstreamForwarder;
  private oobEnabled = false;
  private offered: readonly string[] = [];
  private reading = false;
  private readingStopped = false;
  private outputBackpressure = false;
  /** The client shut down its side: answer what it sent, then close. */
  private inputEnded = false;
  private readonly abort = abortControllerForMany();
  private negotiationTimer: NodeJS.Timeout | undefined;
  /** Bulk input of this client waits in the InputPacer; reading resumes when it has been lexed. */
  private awaitingInputTurn = false;
  /** Assigns the fds the client sends to its messages; only on a socket that accepts fds. */
  private readonly clientFds: ClientFds | undefined;
  private readonly closeFds: (fds: readonly number[]) => void;
  readonly closed: Promise<void>;

  /**
   * `socket` is where replies go and whose 'close' ends the session. Input
   * is read from it too, unless `fdInput` is given: then input, and the fds
   * sent with it, come from there (and `socket` is its writer).
   */
  constructor(
    readonly socket: Socket,
    private readonly context: SessionContext,
    private readonly fdInput?: FdStream,
  ) {
    this.closeFds = fdInput === undefined ? () => undefined : (fds) => fdInput.closeFds(fds);
    this.clientFds = fdInput === undefined ? undefined : new ClientFds(this.closeFds);
    this.machine = sessionStateMachine('QMP', 'queued', NEXT_STATES, context, this.id);
    this.outbound = new Outbound(socket, {
      maxBufferedBytes: context.maxBufferedBytes,
      onOverflow: (bytes) => reportSlowConsumer(context, this.id, bytes),
      onBackpressure: (paused) => {
        this.outputBackpressure = paused;
        if (paused) this.updateReading();
        else this.drainInbox();
      },
    });
    this.replies = new ReplyOrder((text) => this.outbound.write(text));
    // What every forwarded command is sent with, made once rather than per command.
    const origin = downstreamOrigin(this.id, context.endpoint);
    this.forwarder = new UpstreamForwarder(
      {
        isOpen: () => this.state !== 'closed',
        replies: this.replies,
        observer: context.observer,
        write: (text) => this.outbound.write(text),
        closeFds: (fds) => this.closeFds(fds),
        audit: (...args) => this.audit(...args),
        settled: () => this.drainInbox(),
      },
      { origin, oob: false, signal: this.abort.signal },
      { origin, oob: true, signal: this.abort.signal },
    );
    this.streamer = new QemuJsonStreamer(
      {
        group: (tokens) => this.enqueue({ kind: 'group', tokens }),
        error: (desc) => this.enqueue({ kind: 'error', desc }),
        oversize: (bytes, limit) => {
          reportOversizedMessage(context, this.id, bytes, limit);
          this.destroy();
        },
        outOfBudget: (heldBytes) => {
          reportInputBudgetSpent(context, this.id, heldBytes);
          this.destroy();
        },
      },
      context.maxMessageBytes,
      context.inputBudget,
    );
    if (fdInput === undefined) {
      socket.on('data', (chunk: Buffer) => this.onInput(chunk));
      socket.on('end', () => this.onInputEnd());
    } else {
      fdInput.attach({ data: (chunk, fds, truncated) => this.onFdInput(chunk, fds, truncated), end: () => this.onInputEnd() });
    }
    socket.on('error', () => undefined); // a vanished client is handled by 'close'
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.onClose();
      resolve();
    }));
    socket.pause();
    this.updateReading();
  }

  private onInputEnd(): void {
    // A client that gives up before its greeting is let go at once, rather than held through an upstream outage.
    if (this.state === 'queued') return this.destroy();
    this.inputEnded = true;
    this.finishIfDone();
  }

  private enqueue(item: InputItem): void {
    this.inbox.push(item);
    this.clientFds?.completed(item);
  }

  /** Input read with its fds: never paced (an fd-carrying read is one command), so the fds meet their message now. */
  private onFdInput(chunk: Buffer, fds: number[], truncated: boolean): void {
    const clientFds = this.clientFds!;
    if (fds.length === 0 && !truncated && clientFds.heldCount === 0) return this.onInput(chunk);
    clientFds.beforePush(fds, truncated, this.streamer.midMessage);
    this.streamer.push(chunk);
    clientFds.afterPush(this.streamer.midMessage);
    this.drainInbox();
  }

  get link(): UpstreamLink | undefined {
    return this.linkValue;
  }

  get sessionState(): QmpSessionState {
    return this.machine.current;
  }

  private get state(): QmpSessionState {
    return this.machine.current;
  }

  get pendingCount(): number {
    return this.forwarder.pending + this.inbox.length;
  }

  greet(link: UpstreamLink): void {
    if (this.state !== 'queued' || link.qmp === null) return;
    this.linkValue = link;
    this.offered = link.monitor.capabilities;
    this.transition('greeted');
    this.outbound.write(`${greetingFor(link)}\r\n`);
    this.updateReading();
    this.drainInbox();
  }

  deliverEvent(line: string): void {
    if (this.state === 'negotiated') this.outbound.writeEvent(line);
  }

  upstreamLost(): void {
    if (this.state === 'closed') return;
    const lost = (idJson: string | undefined): string => errorReplyText({ errorClass: 'GenericError', desc: UPSTREAM_LOST_DESC, idJson });
    // Requests still upstream: their rejections may not have run yet; answer them now, in order.
    this.replies.fillUnanswered((idJson) => `${lost(idJson)}\r\n`);
    // Input already read is pending too: each message gets the answer it would have had, commands "lost".
    for (let item = this.inbox.shift(); item !== undefined; item = this.inbox.shift()) {
      this.closeItemFds(item);
      const outcome = judgeMessage(item, this.oobEnabled);
      if (outcome.kind === 'local') this.outbound.write(`${errorReplyText(outcome.error)}\r\n`);
      else this.outbound.write(`${lost(outcome.command.idJson)}\r\n`);
    }
    this.transition('closed');
    this.outbound.end();
  }

  stopReading(): void {
    this.readingStopped = true;
    this.updateReading();
  }

  destroy(): void {
    this.streamer.close();
    this.fdInput?.destroy();
    this.socket.destroy();
  }

  private onInput(chunk: Buffer): void {
    const pacer = this.context.inputPacer;
    if (pacer === undefined || !pacer.isBulk(chunk.length, this.streamer.unfinishedBytes)) {
      this.streamer.push(chunk);
      this.drainInbox();
      return;
    }
    // Bulk input waits for its turn (lib/proxy/input-pacer.ts), reading stopped meanwhile: floods cannot hold up other clients.
    this.awaitingInputTurn = true;
    this.updateReading();
    pacer.enqueue(
      chunk,
      (slice) => {
        this.streamer.push(slice);
        this.drainInbox();
      },
      () => {
        this.awaitingInputTurn = false;
        this.updateReading();
      },
    );
  }

  private transition(next: QmpSessionState): void {
    this.machine.transition(next, next);
    // A greeted client has negotiationTimeoutMs to send qmp_capabilities: idle unnegotiated clients would hold connection slots for good.
    if (next === 'greeted') {
      const timeoutMs = this.context.negotiationTimeoutMs ?? DEFAULT_NEGOTIATION_TIMEOUT_MS;
      this.negotiationTimer = setTimeout(() => this.negotiationTimedOut(timeoutMs), timeoutMs);
    } else if (this.negotiationTimer !== undefined) {
      clearTimeout(this.negotiationTimer);
      this.negotiationTimer = undefined;
    }
  }

  private negotiationTimedOut(timeoutMs: number): void {
    this.negotiationTimer = undefined;
    if (this.state !== 'greeted') return;
    reportNegotiationTimeout(this.context, this.id, timeoutMs);
    this.destroy();
  }

  private onClose(): void {
    this.streamer.close();
    if (this.state !== 'closed') this.transition('closed');
    // The client's fds that no command took: the client is gone, so they are closed here, not left for anyone.
    for (const item of this.inbox) this.closeItemFds(item);
    this.clientFds?.closeWaiting();
    this.inbox.clear();
    this.abort.abort();
    this.updateReading();
  }

  /** Acts on parsed input while fewer than maxPendingCommands are upstream. */
  private drainInbox(): void {
    // A client not reading its replies gets no more of its commands run until it catches up.
    while (
      this.state !== 'closed' &&
      this.state !== 'queued' &&
      !this.outputBackpressure &&
      this.forwarder.pending < this.context.maxPendingCommands &&
      // Local answers queued behind a command still upstream count too: they are held in memory.
      this.replies.size < this.context.maxPendingCommands
    ) {
      const item = this.inbox.shift();
      if (item === undefined) break;
      this.handle(item);
    }
    this.updateReading();
    this.finishIfDone();
  }

  /** After the client's end of input: once every answer is out, end the connection. */
  private finishIfDone(): void {
    if (!this.inputEnded || this.state === 'queued' || this.state === 'closed') return;
    if (this.pendingCount > 0 || this.replies.size > 0) return;
    this.outbound.end();
  }

  private handle(item: InputItem): void {
    const outcome = judgeMessage(item, this.oobEnabled);
    if (outcome.kind === 'local') {
      this.closeItemFds(item);
      return this.replies.answerLocally(errorReplyText(outcome.error));
    }
    const command = outcome.command;
    const fdCount = item.fds?.fds.length;
    if (this.state === 'greeted') {
      this.closeItemFds(item);
      return this.negotiate(command);
    }
    const { policy } = this.context;
    const refusal = policy.refusal(command.command, command.arguments);
    if (refusal !== undefined) {
      this.closeItemFds(item);
      this.audit(command, 'denied', undefined, undefined, fdCount);
      return this.replies.answerLocally(errorReplyText({ errorClass: 'GenericError', desc: refusal, idJson: command.idJson }));
    }
    const verdict = fdVerdict(item.fds, command.command);
    if (verdict === 'over-cap') {
      this.closeItemFds(item);
      this.audit(command, 'denied', undefined, undefined, fdCount);
      return this.replies.answerLocally(errorReplyText({ errorClass: 'GenericError', desc: FDS_OVER_CAP_DESC, idJson: command.idJson }));
    }
    if (verdict === 'close') this.closeItemFds(item);
    // The link came up with its schema's checks already built, so this is decided now, in the client's order.
    const checks = this.linkValue!.argumentChecks;
    const problem = checks === undefined ? undefined : argumentProblem(checks, command.command, command.arguments);
    if (problem !== undefined) {
      this.closeItemFds(item);
      this.audit(command, 'denied', undefined, undefined, fdCount);
      // QEMU's input visitor reports every argument error as a GenericError.
      return this.replies.answerLocally(errorReplyText({ errorClass: 'GenericError', desc: problem.desc, idJson: command.idJson }));
    }
    this.forwarder.forward(this.linkValue!, command, verdict === 'pass' ? item.fds : undefined, fdCount);
  }

  private closeItemFds(item: InputItem): void {
    if (item.fds === undefined) return;
    this.closeFds(item.fds.fds);
    item.fds = undefined;
  }

  /** qmp_capabilities and everything else before negotiation: answered here, as QEMU does per connection. */
  private negotiate(command: ClientCommand): void {
    if (command.command !== 'qmp_capabilities') return this.replies.answerLocally(errorReplyText(beforeNegotiation(command)));
    const result = negotiate(command, this.offered);
    if (!result.ok) return this.replies.answerLocally(errorReplyText(result));
    this.oobEnabled = result.enabled.includes('oob');
    this.transition('capabilities-sent');
    this.audit(command, 'ok');
    this.outbound.writeAlone(`${returnReplyText('{}', command.idJson)}\r\n`, () => {
      if (this.state === 'capabilities-sent') this.transition('negotiated');
    });
  }

  private updateReading(): void {
    // Read even while queued (what arrives waits in the inbox), so that a client leaving is noticed.
    const read =
      this.state !== 'closed' &&
      !this.readingStopped &&
      !this.outputBackpressure &&
      !this.awaitingInputTurn &&
      this.inbox.length === 0;
    if (read === this.reading) return;
    this.reading = read;
    const input = this.fdInput ?? this.socket;
    if (read) input.resume();
    else input.pause();
  }

  /** `fds`: how many file descriptors came with the command (passed upstream, or closed when it was refused). */
  private audit(command: ClientCommand, outcome: AuditOutcome, errorClass?: string, startedAt?: number, fds?: number): void {
    const { audit } = this.context;
    this.context.observer?.commandSettled(command.command, outcome, startedAt);
    audit.record({
      monitor: this.context.monitorName(),
      socket: this.context.endpoint,
      client: this.id,
      command: command.command,
      outcome,
      errorClass,
      argumentsJson: audit.recordsArguments ? command.argumentsJson : undefined,
      fds,
    });
  }
}
