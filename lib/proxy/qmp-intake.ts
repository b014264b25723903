/**
 * A downstream QMP client's input between the lexer and the session: what
 * QEMU would make of each message before anything is sent
 * (lib/proxy/qmp-session.ts holds the messages and acts on the verdict).
 */
import type { InputItem } from './client-fds.js';
import { parseTokenGroup } from '../qemu-json/parser.js';
import { decodeBytesLikeQemu } from '../qemu-json/unicode.js';
import { checkRequest, plainTokenCommand, type ClientCommand, type LocalError } from './qmp-request.js';

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
