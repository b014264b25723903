/**
 * A complete message from QEMU that no reader makes sense of. QEMU writes
 * one reply per command; if this one's top-level keys (as far as they can
 * be read) name a reply (`return` or `error`), it answers a request (by its
 * numeric id, else the oldest in-band one), which gets QEMU's text as an
 * UnparsedReturn whose value throws ProtocolError. Dropped instead, it
 * would leave its request unanswered and hand every later reply to the
 * request before it. Anything else (an event, a greeting, an object with no
 * reply's key) answers nothing: it is reported, as any message that is not
 * a reply is.
 */
import { readableMembers } from '../qemu-json/output-members.js';
import { UnparsedReturn } from './wire.js';

/** How a wire id of qmpx's looks in QEMU's text: a small decimal integer. */
const WIRE_ID = /^[1-9][0-9]{0,15}$/;

/**
 * The reply `text` stands for and the id it answers (a wire id as a number,
 * another id as its text, undefined for none: the oldest in-band request),
 * or undefined when it answers no request.
 */
export function unreadableReply(text: string): { reply: UnparsedReturn; id: number | string | undefined } | undefined {
  const members = readableMembers(text);
  if (!members.some(({ key }) => key === 'return' || key === 'error')) return undefined;
  if (members.some(({ key }) => key === 'event' || key === 'QMP')) return undefined;
  const idMember = members.find(({ key }) => key === 'id');
  if (idMember === undefined) return { reply: new UnparsedReturn(text), id: undefined };
  const idText = text.slice(idMember.start, idMember.end);
  const wireId = WIRE_ID.test(idText) ? Number(idText) : undefined;
  return { reply: new UnparsedReturn(text, wireId), id: wireId ?? idText };
}
