/**
 * A QMP command from the moment it is accepted until it is settled: what
 * the QMP client (lib/qmp/client.ts) writes for it and how its reply finds
 * it, and the one command QEMU may answer by going away.
 */
import type { QmpReply } from '../contract.js';
import { PendingRequest } from '../request.js';

/** What `quit` is answered with when QEMU exits before its reply is read. */
export const QUIT_REPLY: QmpReply = { kind: 'return', text: '{"return": {}}', message: { return: {} } };

export class QmpRequest extends PendingRequest<QmpReply> {
  wireId: number | undefined;
  wireText = '';
  oob = false;
  /** Sent by sendWithCallback: a success reply may be handed over unparsed. */
  relay = false;
  /** File descriptors to send with the command's bytes. */
  fds: readonly number[] | undefined;
  /** A command that takes fds (with or without any): another one with fds is not written while this one runs. */
  takesFds = false;
}

/** Whether the monitor is expected to go away after `command` (a comparison: a Set would hash every fresh name). */
export function isClosingCommand(command: string): boolean {
  return command === 'quit';
}
