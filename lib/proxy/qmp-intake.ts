/**
 * A downstream QMP client's input between the lexer and the session: the
 * messages read and not yet acted on, and what QEMU would make of each one
 * before anything is sent (lib/proxy/qmp-session.ts acts on the verdict).
 */
import type { InputItem } from './client-fds.js';
import { parseTokenGroup } from '../qemu-json/parser.js';
import { decodeBytesLikeQemu } from '../qemu-json/unicode.js';
import { checkRequest, plainTokenCommand, type ClientCommand, type LocalError } from './qmp-request.js';

/**
 * Parsed input not yet acted on, oldest first. It waits here while the
 * client has maxPendingCommands upstream or is not reading its replies.
 */
export class InputInbox {
  private items: InputItem[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: InputItem): void {
    this.items.push(item);
  }

  /** The oldest item, taken out; undefined when none waits. */
  next(): InputItem | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++]!;
    if (this.head === this.items.length) this.clear();
    return item;
  }

  /** Everything still waiting, in order (the inbox keeps them). */
  waiting(): InputItem[] {
    return this.items.slice(this.head);
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** What QEMU does with one message: answer it itself (before dispatch), or run a command. */
export type InputVerdict = { kind: 'local'; error: LocalError } | { kind: 'command'; command: ClientCommand };

/** What QEMU would do with one message, before anything is sent; `oobEnabled`: the client negotiated exec-oob. */
export function judgeMessage(item: InputItem, oobEnabled: boolean): InputVerdict {
  if (item.kind === 'error') return { kind: 'local', error: { errorClass: 'GenericError', desc: decodeBytesLikeQemu(item.desc), idJson: undefined } };
  const plain = plainTokenCommand(item.tokens);
  if (plain !== undefined) return { kind: 'command', command: plain };
  const parsed = parseTokenGroup(item.tokens);
  if (!parsed.ok) return { kind: 'local', error: { errorClass: 'GenericError', desc: decodeBytesLikeQemu(parsed.desc), idJson: undefined } };
  const checked = checkRequest(parsed.value, oobEnabled);
  return checked.ok ? { kind: 'command', command: checked.command } : { kind: 'local', error: checked };
}
