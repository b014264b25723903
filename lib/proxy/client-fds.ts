/**
 * File descriptors a downstream QMP client sends (SCM_RIGHTS), tied to the
 * one message they came with, so that none ever reaches QEMU with another
 * command, and none stays behind in QEMU for the next `getfd` / `add-fd`
 * of whoever sends one.
 *
 * Which message an fd came with: the kernel hands a unix stream socket's
 * fds over with the first byte of the write they were sent with, and one
 * read returns at most one such write's fds, at its end (it stops there).
 * So the fds of a read belong to the LAST message whose first byte is in
 * that read:
 *
 *   read: ..tail of A}{"execute":"B"...}{"execute":"C"     + fd  →  C's (C finishes in a later read)
 *   read: {"execute":"A"}{"execute":"getfd",...}           + fd  →  getfd's
 *   read: ...middle of A...                                + fd  →  no message began here: closed
 *
 * What happens to them (QmpSession applies it, see `fdVerdict`):
 * - a command that takes fds (`getfd`, `add-fd`) carries them upstream
 *   with its own bytes; qmpx closes its copies once the reply has come;
 * - with any other command, a message QEMU would refuse unread (not JSON,
 *   before negotiation, refused by the socket's policy) or the client's
 *   connection ending first, they are closed in qmpx, and the client gets
 *   exactly the reply QEMU alone would give that message (QEMU would keep
 *   such an fd for a later command; qmpx does not: no client's fd may
 *   wait for another client's command);
 * - past MAX_FDS_PER_COMMAND fds with one message, all of them are closed
 *   and the command is answered with FDS_OVER_CAP_DESC, nothing sent.
 */
import type { TokenGroup } from '../qemu-json/tokens.js';
import { MAX_FDS_PER_COMMAND, takesFds } from '../session/fd-rules.js';

export { MAX_FDS_PER_COMMAND } from '../session/fd-rules.js';

/** The desc of the GenericError a command sent with too many fds is answered with. */
export const FDS_OVER_CAP_DESC = `too many file descriptors with one command: qmpx passes at most ${MAX_FDS_PER_COMMAND}`;

/** The fds that came with one message. */
export interface MessageFds {
  readonly fds: number[];
  /** More than MAX_FDS_PER_COMMAND were sent (the kernel closed the rest, or they added up over several reads). */
  overCap: boolean;
}

/** One message of the client's input, as QmpSession queues it. */
export type InputItem = { kind: 'group'; tokens: TokenGroup; fds?: MessageFds } | { kind: 'error'; desc: string; fds?: MessageFds };

/** What to do with a message's fds once it is judged. */
export type FdVerdict = 'none' | 'pass' | 'close' | 'over-cap';

export function fdVerdict(fds: MessageFds | undefined, command: string): FdVerdict {
  if (fds === undefined) return 'none';
  if (fds.overCap) return 'over-cap';
  return takesFds(command) ? 'pass' : 'close';
}

/**
 * Assigns the fds of each read to a message, around one streamer push:
 * `beforePush` with the read's fds, every message the push completes goes
 * through `completed`, then `afterPush`.
 */
export class ClientFds {
  /** fds of a read whose last-begun message is not complete yet: they go with it. */
  private waiting: MessageFds | undefined;
  private readFds: MessageFds | undefined;
  private midMessageBefore = false;
  private completedInRead: InputItem[] = [];

  constructor(private readonly close: (fds: readonly number[]) => void) {}

  /** fds now held for messages not yet complete. */
  get heldCount(): number {
    return this.waiting?.fds.length ?? 0;
  }

  beforePush(fds: number[], truncated: boolean, midMessage: boolean): void {
    this.midMessageBefore = midMessage;
    this.completedInRead = [];
    this.readFds = fds.length > 0 || truncated ? { fds, overCap: truncated || fds.length > MAX_FDS_PER_COMMAND } : undefined;
  }

  /** A message the push completed (in order). The one the waiting fds belong to gets them here. */
  completed(item: InputItem): void {
    if (this.waiting !== undefined) {
      item.fds = this.waiting;
      this.waiting = undefined;
    }
    if (this.readFds !== undefined) this.completedInRead.push(item);
  }

  /** After the push: the read's fds go to the last message begun in it, or are closed. */
  afterPush(midMessage: boolean): void {
    const fds = this.readFds;
    this.readFds = undefined;
    if (fds === undefined) return;
    const completed = this.completedInRead;
    this.completedInRead = [];
    const firstBegunHere = this.midMessageBefore ? 1 : 0;
    const trailingBegunHere = midMessage && (completed.length > 0 || !this.midMessageBefore);
    if (trailingBegunHere) {
      this.waiting = fds;
      return;
    }
    // A message completed in this read already holds fds only if it began in an earlier read that had some.
    const last = completed.length > firstBegunHere ? completed[completed.length - 1]! : undefined;
    if (last === undefined) return this.close(fds.fds);
    if (last.fds !== undefined) return this.merge(last.fds, fds);
    last.fds = fds;
  }

  /** Closes the fds held for an unfinished message (the client left, or its input was cut off). */
  closeWaiting(): void {
    if (this.waiting !== undefined) this.close(this.waiting.fds);
    this.waiting = undefined;
  }

  /** Two reads' fds for one message (sent in two writes): kept together, the cap over both. */
  private merge(into: MessageFds, more: MessageFds): void {
    into.fds.push(...more.fds);
    into.overCap ||= more.overCap || into.fds.length > MAX_FDS_PER_COMMAND;
  }
}
