/**
 * The part of a downstream QMP session that sends its commands upstream
 * and puts the answers back in the client's order (lib/proxy/qmp-session.ts
 * owns the rest of the session).
 *
 * - Replies leave in the order the commands came: an in-band reply or a
 *   local answer waits behind the client's earlier in-band commands; an
 *   exec-oob reply leaves as soon as it arrives (it may overtake, as in
 *   QEMU).
 * - Replies are handed over synchronously as QEMU's bytes are read
 *   (sendWithCallback), so they leave in upstream wire order with events.
 */
import { AbortError } from '../errors.js';
import { Fifo } from '../fifo.js';
import type { QmpReply, RawRequestOptions } from '../contract.js';
import { echoedId } from '../qmp/wire.js';
import type { AuditOutcome } from './audit.js';
import type { MessageFds } from './client-fds.js';
import { attachId, replaceWireId } from '../qemu-json/id-placement.js';
import { errorReplyText } from '../qemu-json/replies.js';
import type { ClientCommand } from './qmp-request.js';
import type { SessionObserver } from './observer.js';
import type { UpstreamLink } from './upstream.js';

/** The desc every request pending when the upstream goes away is answered with. */
export const UPSTREAM_LOST_DESC = 'monitor connection lost';

/** A place in the in-order reply queue; `text` is set once the answer is known. */
interface ReplySlot {
  text: string | undefined;
  /** The client's id of the forwarded command the slot waits for; absent for a local answer. */
  idJson?: string | undefined;
}

/** The answers one client is owed, written in the order its in-band commands came. */
export class ReplyOrder {
  private readonly slots = new Fifo<ReplySlot>();

  constructor(private readonly write: (text: string) => void) {}

  /** Answers held here: waiting for QEMU, or answered and waiting behind one that is. */
  get size(): number {
    return this.slots.length;
  }

  /** A place for the reply of an in-band command about to go upstream. */
  reserve(idJson: string | undefined): ReplySlot {
    const slot: ReplySlot = { text: undefined, idJson };
    this.slots.push(slot);
    return slot;
  }

  /** Sets the answer of `slot` unless it already has one (the upstream was lost first), and writes what is due. */
  fill(slot: ReplySlot, text: string): void {
    if (slot.text !== undefined) return;
    slot.text = text;
    this.flush();
  }

  /** A local answer keeps its place behind the client's in-band commands still upstream. */
  answerLocally(text: string): void {
    if (this.slots.length === 0) this.write(`${text}\r\n`);
    else this.slots.push({ text: `${text}\r\n` });
  }

  /** Answers every slot still waiting for QEMU with `textFor(its id)`, then writes them all. */
  fillUnanswered(textFor: (idJson: string | undefined) => string): void {
    for (const slot of this.slots) {
      if (slot.text === undefined) slot.text = textFor(slot.idJson);
    }
    this.flush();
  }

  private flush(): void {
    for (let next = this.slots.peek(); next?.text !== undefined; next = this.slots.peek()) {
      this.slots.shift();
      this.write(next.text);
    }
  }
}

/** What the forwarder needs of the session it works for. */
export interface ForwardingHost {
  /** False once the client has gone: replies are then only audited. */
  isOpen(): boolean;
  readonly replies: ReplyOrder;
  readonly observer: SessionObserver | undefined;
  /** Writes an out-of-order (exec-oob) reply at once. */
  write(text: string): void;
  closeFds(fds: readonly number[]): void;
  audit(command: ClientCommand, outcome: AuditOutcome, errorClass?: string, startedAt?: number, fds?: number): void;
  /** A forwarded command settled while the client is connected: more of its input may run now. */
  settled(): void;
}

/** Sends one client's commands upstream and routes each answer back to it. */
export class UpstreamForwarder {
  /** Commands sent upstream and not yet settled. */
  pending = 0;

  constructor(
    private readonly host: ForwardingHost,
    private readonly inBandOptions: RawRequestOptions,
    private readonly oobOptions: RawRequestOptions,
  ) {}

  /**
   * Sends `command` upstream on `link`, with `fds` when it takes them. An
   * upstream that cannot carry fds (TCP) gets the command alone and answers
   * as QEMU answers a command that came without one; qmpx's copies are
   * closed once the command has settled (the kernel gave QEMU its own).
   */
  forward(link: UpstreamLink, command: ClientCommand, fds: MessageFds | undefined, fdCount: number | undefined): void {
    const { host } = this;
    const monitor = link.qmp!;
    const slot = command.oob ? undefined : host.replies.reserve(command.idJson);
    this.pending++;
    const startedAt = host.observer === undefined ? undefined : performance.now();
    if (startedAt !== undefined) host.observer?.commandSent(command.command, startedAt);
    const base = command.oob ? this.oobOptions : this.inBandOptions;
    let passed: readonly number[] | undefined;
    if (fds !== undefined && fds.fds.length > 0) {
      if (link.carriesFds) passed = fds.fds;
      else host.closeFds(fds.fds);
    }
    const options: RawRequestOptions = passed === undefined ? base : { ...base, fds: passed };
    monitor.sendWithCallback(command.command, command.argumentsJson, options, (outcome) => {
      if (passed !== undefined) host.closeFds(passed);
      if (outcome.ok) this.onReply(command, slot, outcome.reply, startedAt, fdCount);
      else this.onFailure(command, slot, outcome.error, startedAt, fdCount);
    });
  }

  private onReply(command: ClientCommand, slot: ReplySlot | undefined, reply: QmpReply, startedAt: number | undefined, fdCount?: number): void {
    this.pending--;
    const isError = reply.kind === 'error';
    const open = this.host.isOpen();
    if (open) this.relayReply(command, slot, reply, isError);
    // Recorded once the reply is on its way: the audit line is not on the client's round trip.
    this.host.audit(command, isError ? 'error' : 'ok', isError ? reply.message.error.class : undefined, startedAt, fdCount);
    if (open) this.host.settled();
  }

  /** QEMU's reply with the client's id put back: at once for exec-oob, else in its place in the order. */
  private relayReply(command: ClientCommand, slot: ReplySlot | undefined, reply: QmpReply, isError: boolean): void {
    const { text } = reply;
    if (slot === undefined) {
      const wireId = echoedId(reply);
      const withId = typeof wireId === 'number' ? replaceWireId(text, isError, wireId, command.idJson) : attachId(text, isError, command.idJson);
      this.host.write(`${withId}\r\n`);
    } else if (slot.text === undefined) {
      this.host.replies.fill(slot, `${attachId(text, isError, command.idJson)}\r\n`);
    }
  }

  private onFailure(command: ClientCommand, slot: ReplySlot | undefined, error: Error, startedAt: number | undefined, fdCount?: number): void {
    this.pending--;
    if (error instanceof AbortError || !this.host.isOpen()) {
      this.host.audit(command, 'dropped', undefined, startedAt, fdCount);
      return;
    }
    this.host.audit(command, 'lost', undefined, startedAt, fdCount);
    const text = `${errorReplyText({ errorClass: 'GenericError', desc: UPSTREAM_LOST_DESC, idJson: command.idJson })}\r\n`;
    if (slot === undefined) this.host.write(text);
    else this.host.replies.fill(slot, text);
    this.host.settled();
  }
}
