/**
 * A QMP command from the moment it is accepted until it is settled: what
 * the QMP client (lib/qmp/client.ts) writes for it and how its reply finds
 * it, and the one command QEMU may answer by going away. A request settles
 * with what its caller takes: QEMU's reply as sent (ReplyRequest), or the
 * reply's value, an error reply rejecting it with QmpError (ValueRequest).
 */
import type { QmpReply } from '../contract.js';
import { QmpError } from '../errors.js';
import { PendingRequest, type RequestOptions, type RequestOrigin, type RequestOutcome } from '../request.js';

/** Either kind of QMP request: what the client queues, writes and answers. */
export type QmpRequest = ReplyRequest | ValueRequest;

/** What `quit` is answered with when QEMU exits before its reply is read. */
export const QUIT_REPLY: QmpReply = { kind: 'return', text: '{"return": {}}', message: { return: {} } };

abstract class QmpRequestBase<Result> extends PendingRequest<Result> {
  // Assigned in the constructor, as PendingRequest's are.
  declare wireId: number | undefined;
  declare wireText: string;
  declare oob: boolean;
  /** Sent by sendWithCallback: a success reply may be handed over unparsed. */
  declare relay: boolean;
  /** File descriptors to send with the command's bytes. */
  declare fds: readonly number[] | undefined;
  /** A command that takes fds (with or without any): another one with fds is not written while this one runs. */
  declare takesFds: boolean;

  constructor(command: string, origin: RequestOrigin, options: RequestOptions, defaultTimeoutMs?: number, onSettled?: (outcome: RequestOutcome<Result>) => void) {
    super(command, origin, options, defaultTimeoutMs, onSettled);
    this.wireId = undefined;
    this.wireText = '';
    this.oob = false;
    this.relay = false;
    this.fds = undefined;
    this.takesFds = false;
  }

  /** Settles with QEMU's reply to this command; false when it had settled already. */
  abstract answer(reply: QmpReply): boolean;
}

/** Settles with the reply as QEMU sent it, error replies included. */
export class ReplyRequest extends QmpRequestBase<QmpReply> {
  answer(reply: QmpReply): boolean {
    return this.resolve(reply);
  }
}

/** Settles with the reply's value; an error reply rejects with QmpError, an unreadable one with ProtocolError. */
export class ValueRequest extends QmpRequestBase<unknown> {
  answer(reply: QmpReply): boolean {
    if (this.settled) return false;
    if (reply.kind === 'error') return this.reject(new QmpError(reply.message.error.class, reply.message.error.desc, this.command));
    let value: unknown;
    try {
      value = reply.message.return;
    } catch (error) {
      return this.reject(error as Error);
    }
    return this.resolve(value);
  }
}

/** Whether the monitor is expected to go away after `command` (a comparison: a Set would hash every fresh name). */
export function isClosingCommand(command: string): boolean {
  return command === 'quit';
}
