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
 * - Replies leave in the order the commands came: an in-band reply or a
 *   local answer waits behind the client's earlier in-band commands; an
 *   exec-oob reply leaves as soon as it arrives (it may overtake, as in
 *   QEMU).
 * - Events are written only once the qmp_capabilities reply has reached the
 *   kernel (go-qemu drops what shares a read with that reply), and in
 *   upstream wire order with this client's replies: replies are handed over
 *   synchronously as QEMU's bytes are read (sendWithCallback), and so are
 *   events.
 */
import type { Socket } from 'node:net';
import { AbortError } from '../errors.js';
import type { FdStream } from '../fd/stream.js';
import type { QmpReply, RawRequestOptions } from '../contract.js';
import { echoedId } from '../qmp/wire.js';
import { argumentProblem } from './argument-checks.js';
import { ClientFds, FDS_OVER_CAP_DESC, fdVerdict, type InputItem, type MessageFds } from './client-fds.js';
import type { AuditOutcome } from './audit.js';
import { Outbound } from './outbound.js';
import { attachId, replaceWireId } from '../qemu-json/id-placement.js';
import { parseTokenGroup } from '../qemu-json/parser.js';
import { errorReplyText, returnReplyText } from '../qemu-json/replies.js';
import { QemuJsonStreamer } from '../qemu-json/streamer.js';
import { decodeBytesLikeQemu } from '../qemu-json/unicode.js';
import { beforeNegotiation, checkRequest, negotiate, plainTokenCommand, type ClientCommand, type LocalError } from './qmp-request.js';
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

/** The desc every request pending when the upstream goes away is answered with (issue 5). */
export const UPSTREAM_LOST_DESC = 'monitor connection lost';
/** How long a greeted client may take to send qmp_capabilities before it is disconnected. */
export const DEFAULT_NEGOTIATION_TIMEOUT_MS = 30_000;

/** A place in the in-order reply queue; `text` is set once the answer is known. */
interface ReplySlot {
  text: string | undefined;
}

export class QmpSession implements DownstreamSession {
  readonly id = allocateSessionId();
  readonly protocol = 'qmp' as const;
  private readonly machine: StateMachine<QmpSessionState>;
  private linkValue: UpstreamLink | undefined;
  private readonly outbound: Outbound;
  private readonly streamer: QemuJsonStreamer;
  /** Parsed input not yet acted on (waits while maxPendingCommands are upstream). */
  private inbox: InputItem[] = [];
  private inboxHead = 0;
  private slots: ReplySlot[] = [];
  private slotsHead = 0;
  private upstreamPending = 0;
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
  /** What every forwarded command is sent with, made once rather than per command. */
  private readonly inBandOptions: RawRequestOptions;
  private readonly oobOptions: RawRequestOptions;
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
    const origin = downstreamOrigin(this.id, context.endpoint);
    this.inBandOptions = { origin, oob: false, signal: this.abort.signal };
    this.oobOptions = { origin, oob: true, signal: this.abort.signal };
    this.outbound = new Outbound(socket, {
      maxBufferedBytes: context.maxBufferedBytes,
      onOverflow: (bytes) => {
        context.logger.warn(
          { monitor: context.monitorName(), socket: context.endpoint, client: this.id, bufferedBytes: bytes, limit: context.maxBufferedBytes },
          'client is not reading; disconnected (outbound buffer full)',
        );
        context.observer?.slowConsumerDisconnected();
      },
      onBackpressure: (paused) => {
        this.outputBackpressure = paused;
        if (paused) this.updateReading();
        else this.drainInbox();
      },
    });
    this.streamer = new QemuJsonStreamer(
      {
        group: (tokens) => this.enqueue({ kind: 'group', tokens }),
        error: (desc) => this.enqueue({ kind: 'error', desc }),
        oversize: (bytes, limit) => {
          context.logger.warn(
            { monitor: context.monitorName(), socket: context.endpoint, client: this.id, bytes, limit },
            'client sent an oversized message; disconnected',
          );
          context.observer?.policyDisconnected('oversized message');
          this.destroy();
        },
        outOfBudget: (heldBytes) => {
          context.logger.warn(
            { monitor: context.monitorName(), socket: context.endpoint, client: this.id, heldBytes, limit: context.inputBudget?.limitBytes },
            'memory for unfinished client input is spent; the client holding more disconnected',
          );
          context.observer?.policyDisconnected('input memory spent');
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
    return this.upstreamPending + (this.inbox.length - this.inboxHead);
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
    for (let i = this.slotsHead; i < this.slots.length; i++) {
      const slot = this.slots[i]!;
      if (slot.text === undefined) slot.text = `${lost((slot as ForwardSlot).idJson)}\r\n`;
    }
    this.flushSlots();
    // Input already read is pending too: each message gets the answer it would have had, commands "lost".
    for (let item = this.nextItem(); item !== undefined; item = this.nextItem()) {
      this.closeItemFds(item);
      const outcome = this.judge(item);
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
    this.context.logger.warn(
      { monitor: this.context.monitorName(), socket: this.context.endpoint, client: this.id, timeoutMs },
      'client did not negotiate capabilities in time; disconnected',
    );
    this.context.observer?.policyDisconnected('no capabilities negotiated in time');
    this.destroy();
  }

  private onClose(): void {
    this.streamer.close();
    if (this.state !== 'closed') this.transition('closed');
    // The client's fds that no command took: the client is gone, so they are closed here, not left for anyone.
    for (let i = this.inboxHead; i < this.inbox.length; i++) this.closeItemFds(this.inbox[i]!);
    this.clientFds?.closeWaiting();
    this.inbox = [];
    this.inboxHead = 0;
    this.abort.abort();
    this.updateReading();
  }

  private nextItem(): InputItem | undefined {
    if (this.inboxHead >= this.inbox.length) return undefined;
    const item = this.inbox[this.inboxHead++]!;
    if (this.inboxHead === this.inbox.length) {
      this.inbox = [];
      this.inboxHead = 0;
    }
    return item;
  }

  /** Acts on parsed input while fewer than maxPendingCommands are upstream. */
  private drainInbox(): void {
    // A client not reading its replies gets no more of its commands run until it catches up.
    while (
      this.state !== 'closed' &&
      this.state !== 'queued' &&
      !this.outputBackpressure &&
      this.upstreamPending < this.context.maxPendingCommands &&
      // Local answers queued behind a command still upstream count too: they are held in memory.
      this.slots.length - this.slotsHead < this.context.maxPendingCommands
    ) {
      const item = this.nextItem();
      if (item === undefined) break;
      this.handle(item);
    }
    this.updateReading();
    this.finishIfDone();
  }

  /** After the client's end of input: once every answer is out, end the connection. */
  private finishIfDone(): void {
    if (!this.inputEnded || this.state === 'queued' || this.state === 'closed') return;
    if (this.pendingCount > 0 || this.slotsHead < this.slots.length) return;
    this.outbound.end();
  }

  /** What QEMU would do with one message, before anything is sent. */
  private judge(item: InputItem): { kind: 'local'; error: LocalError } | { kind: 'command'; command: ClientCommand } {
    if (item.kind === 'error') return { kind: 'local', error: { errorClass: 'GenericError', desc: decodeBytesLikeQemu(item.desc), idJson: undefined } };
    const plain = plainTokenCommand(item.tokens);
    if (plain !== undefined) return { kind: 'command', command: plain };
    const parsed = parseTokenGroup(item.tokens);
    if (!parsed.ok) return { kind: 'local', error: { errorClass: 'GenericError', desc: decodeBytesLikeQemu(parsed.desc), idJson: undefined } };
    const checked = checkRequest(parsed.value, this.oobEnabled);
    return checked.ok ? { kind: 'command', command: checked.command } : { kind: 'local', error: checked };
  }

  private handle(item: InputItem): void {
    const outcome = this.judge(item);
    if (outcome.kind === 'local') {
      this.closeItemFds(item);
      return this.answerLocally(errorReplyText(outcome.error));
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
      return this.answerLocally(errorReplyText({ errorClass: 'GenericError', desc: refusal, idJson: command.idJson }));
    }
    const verdict = fdVerdict(item.fds, command.command);
    if (verdict === 'over-cap') {
      this.closeItemFds(item);
      this.audit(command, 'denied', undefined, undefined, fdCount);
      return this.answerLocally(errorReplyText({ errorClass: 'GenericError', desc: FDS_OVER_CAP_DESC, idJson: command.idJson }));
    }
    if (verdict === 'close') this.closeItemFds(item);
    // The link came up with its schema's checks already built, so this is decided now, in the client's order.
    const checks = this.linkValue!.argumentChecks;
    const problem = checks === undefined ? undefined : argumentProblem(checks, command.command, command.arguments);
    if (problem !== undefined) {
      this.closeItemFds(item);
      this.audit(command, 'denied', undefined, undefined, fdCount);
      // QEMU's input visitor reports every argument error as a GenericError.
      return this.answerLocally(errorReplyText({ errorClass: 'GenericError', desc: problem.desc, idJson: command.idJson }));
    }
    this.forward(command, verdict === 'pass' ? item.fds : undefined, fdCount);
  }

  private closeItemFds(item: InputItem): void {
    if (item.fds === undefined) return;
    this.closeFds(item.fds.fds);
    item.fds = undefined;
  }

  /** qmp_capabilities and everything else before negotiation: answered here, as QEMU does per connection. */
  private negotiate(command: ClientCommand): void {
    if (command.command !== 'qmp_capabilities') return this.answerLocally(errorReplyText(beforeNegotiation(command)));
    const result = negotiate(command, this.offered);
    if (!result.ok) return this.answerLocally(errorReplyText(result));
    this.oobEnabled = result.enabled.includes('oob');
    this.transition('capabilities-sent');
    this.audit(command, 'ok');
    this.outbound.writeAlone(`${returnReplyText('{}', command.idJson)}\r\n`, () => {
      if (this.state === 'capabilities-sent') this.transition('negotiated');
    });
  }

  /**
   * Sends `command` upstream, with `fds` when it takes them. An upstream
   * that cannot carry fds (TCP) gets the command alone and answers as QEMU
   * answers a command that came without one; qmpx's copies are closed once
   * the command has settled (the kernel gave QEMU its own).
   */
  private forward(command: ClientCommand, fds: MessageFds | undefined, fdCount: number | undefined): void {
    const link = this.linkValue!;
    const monitor = link.qmp!;
    const slot: ForwardSlot | undefined = command.oob ? undefined : { text: undefined, idJson: command.idJson };
    if (slot) this.slots.push(slot);
    this.upstreamPending++;
    const startedAt = this.context.observer === undefined ? undefined : performance.now();
    if (startedAt !== undefined) this.context.observer?.commandSent(command.command, startedAt);
    const base = command.oob ? this.oobOptions : this.inBandOptions;
    let passed: readonly number[] | undefined;
    if (fds !== undefined && fds.fds.length > 0) {
      if (link.carriesFds) passed = fds.fds;
      else this.closeFds(fds.fds);
    }
    const options: RawRequestOptions = passed === undefined ? base : { ...base, fds: passed };
    monitor.sendWithCallback(command.command, command.argumentsJson, options, (outcome) => {
      if (passed !== undefined) this.closeFds(passed);
      if (outcome.ok) this.onReply(command, slot, outcome.reply, startedAt, fdCount);
      else this.onFailure(command, slot, outcome.error, startedAt, fdCount);
    });
  }

  private onReply(command: ClientCommand, slot: ForwardSlot | undefined, reply: QmpReply, startedAt: number | undefined, fdCount?: number): void {
    this.upstreamPending--;
    const isError = reply.kind === 'error';
    const open = this.state !== 'closed';
    if (open) this.relayReply(command, slot, reply, isError);
    // Recorded once the reply is on its way: the audit line is not on the client's round trip.
    this.audit(command, isError ? 'error' : 'ok', isError ? reply.message.error.class : undefined, startedAt, fdCount);
    if (open) this.drainInbox();
  }

  /** QEMU's reply with the client's id put back: at once for exec-oob, else in its place in the order. */
  private relayReply(command: ClientCommand, slot: ForwardSlot | undefined, reply: QmpReply, isError: boolean): void {
    const { text } = reply;
    if (slot === undefined) {
      const wireId = echoedId(reply);
      const withId = typeof wireId === 'number' ? replaceWireId(text, isError, wireId, command.idJson) : attachId(text, isError, command.idJson);
      this.outbound.write(`${withId}\r\n`);
    } else if (slot.text === undefined) {
      slot.text = `${attachId(text, isError, command.idJson)}\r\n`;
      this.flushSlots();
    }
  }

  private onFailure(command: ClientCommand, slot: ForwardSlot | undefined, error: Error, startedAt: number | undefined, fdCount?: number): void {
    this.upstreamPending--;
    if (error instanceof AbortError || this.state === 'closed') {
      this.audit(command, 'dropped', undefined, startedAt, fdCount);
      return;
    }
    this.audit(command, 'lost', undefined, startedAt, fdCount);
    const text = `${errorReplyText({ errorClass: 'GenericError', desc: UPSTREAM_LOST_DESC, idJson: command.idJson })}\r\n`;
    if (slot === undefined) {
      this.outbound.write(text);
    } else if (slot.text === undefined) {
      slot.text = text;
      this.flushSlots();
    }
    this.drainInbox();
  }

  /** A local answer keeps its place behind the client's in-band commands still upstream. */
  private answerLocally(text: string): void {
    if (this.slotsHead === this.slots.length) this.outbound.write(`${text}\r\n`);
    else this.slots.push({ text: `${text}\r\n` });
  }

  private flushSlots(): void {
    while (this.slotsHead < this.slots.length) {
      const text = this.slots[this.slotsHead]!.text;
      if (text === undefined) break;
      this.slotsHead++;
      this.outbound.write(text);
    }
    if (this.slotsHead === this.slots.length) {
      this.slots = [];
      this.slotsHead = 0;
    } else if (this.slotsHead > 1024 && this.slotsHead * 2 > this.slots.length) {
      // A client that always has a command upstream never empties the queue: drop the answered prefix.
      this.slots = this.slots.slice(this.slotsHead);
      this.slotsHead = 0;
    }
  }

  private updateReading(): void {
    // Read even while queued (what arrives waits in the inbox), so that a client leaving is noticed.
    const read =
      this.state !== 'closed' &&
      !this.readingStopped &&
      !this.outputBackpressure &&
      !this.awaitingInputTurn &&
      this.inboxHead === this.inbox.length;
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

interface ForwardSlot extends ReplySlot {
  idJson: string | undefined;
}

/**
 * The upstream's greeting bytes, with the capability list cut down to what
 * the upstream link negotiated (a client may enable only those).
 */
export function greetingFor(link: UpstreamLink): string {
  const qmp = link.qmp!;
  const text = qmp.greetingText ?? '';
  const offered = qmp.greeting?.QMP.capabilities ?? [];
  const usable = qmp.capabilities;
  if (offered.length === usable.length && offered.every((capability, index) => capability === usable[index])) return text;
  return text.replace(/"capabilities": \[[^\]]*\]/, `"capabilities": [${usable.map((capability) => JSON.stringify(capability)).join(', ')}]`);
}
