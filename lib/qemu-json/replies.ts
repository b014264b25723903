/**
 * Replies qmpx writes in QEMU's place, as QEMU writes them: compact, with
 * the id where QEMU's QDict order puts it, first in an error and last in a
 * return (docs/monitor-facts.md §2; id-placement.ts finds the same places
 * in QEMU's own replies).
 */
import { quoteLikeQemu } from './print.js';

/** An error reply: QEMU's class and text, and the id as it is to be echoed (undefined: the input had none, or QEMU would not echo it). */
export interface ErrorReply {
  readonly errorClass: string;
  readonly desc: string;
  readonly idJson?: string | undefined;
}

/** `{"error": {"class": C, "desc": D}}`, with the id first; no line end. */
export function errorReplyText(error: ErrorReply): string {
  const body = `"error": {"class": ${quoteLikeQemu(error.errorClass)}, "desc": ${quoteLikeQemu(error.desc)}}`;
  return error.idJson === undefined ? `{${body}}` : `{"id": ${error.idJson}, ${body}}`;
}

/** `{"return": V}` for V already JSON text, with the id last; no line end. */
export function returnReplyText(valueText: string, idJson?: string): string {
  return idJson === undefined ? `{"return": ${valueText}}` : `{"return": ${valueText}, "id": ${idJson}}`;
}
