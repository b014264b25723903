/**
 * What one QEMU event becomes on NATS: its subject, headers and message id.
 *
 *   subject   qmpx.<host>.<vm>.evt.<EVENT>
 *   body      QEMU's JSON text of the event, exactly as read (no line end)
 *   headers   Qmpx-Host: <host>   Qmpx-Vm: <vm>   (names as given; one with a byte
 *             outside printable ASCII in its subject token's encoding)
 *             Qmpx-Timestamp: <seconds>.<microseconds, 6 digits>   (QEMU's own)
 *             Nats-Msg-Id: <host>/<vm>/<timestamp>/<EVENT>/<n>
 *
 * The message id is made only of what QEMU says and serve's names, never of
 * when or by which process it was published: a second `serve` on the same
 * VM (each on its own monitor socket), or the same `serve` republishing
 * after an unacknowledged publish, makes the same id, which JetStream
 * stores once within its duplicate window. `n` counts events of the VM with
 * the same timestamp (from 0), so two events QEMU stamps alike stay apart.
 * Host and VM names are percent-encoded there as in subjects, so `/` can
 * only be the separator.
 */
import type { QmpTimestamp } from '../qmp/wire.js';
import { encodeToken, subjectFor } from './subjects.js';

export const HOST_HEADER = 'Qmpx-Host';
export const VM_HEADER = 'Qmpx-Vm';
export const TIMESTAMP_HEADER = 'Qmpx-Timestamp';
/** NATS's own header of a message id, which JetStream deduplicates on. */
export const MESSAGE_ID_HEADER = 'Nats-Msg-Id';

/** One event ready to publish. */
export interface EventMessage {
  subject: string;
  /** QEMU's text of the event. */
  body: string;
  messageId: string;
  /** Header name → value, in the order written. */
  headers: ReadonlyArray<readonly [string, string]>;
}

/** QEMU's timestamp as `seconds.microseconds`, the microseconds always 6 digits. */
export function timestampText(timestamp: QmpTimestamp): string {
  return `${timestamp.seconds}.${String(timestamp.microseconds).padStart(6, '0')}`;
}

/**
 * Numbers the events of one VM that share a timestamp. Keep one per VM and
 * per upstream link: QEMU's timestamps only move forward within a run, so
 * only the last timestamp needs remembering.
 */
export class SameTimestampCounter {
  private last = '';
  private count = 0;

  /** 0 for the first event with `stamp`, 1 for the next with the same one, ... */
  next(stamp: string): number {
    if (stamp === this.last) return ++this.count;
    this.last = stamp;
    this.count = 0;
    return 0;
  }
}

/** The message of an event `name` with text `body`; `sequence` from the VM's SameTimestampCounter. */
export function eventMessage(host: string, vm: string, name: string, timestamp: QmpTimestamp, body: string, sequence: number): EventMessage {
  const stamp = timestampText(timestamp);
  const messageId = `${encodeToken(host)}/${encodeToken(vm)}/${stamp}/${encodeToken(name)}/${sequence}`;
  return {
    subject: subjectFor(host, vm, 'evt', name),
    body,
    messageId,
    headers: [
      [HOST_HEADER, headerName(host)],
      [VM_HEADER, headerName(vm)],
      [TIMESTAMP_HEADER, stamp],
      [MESSAGE_ID_HEADER, messageId],
    ],
  };
}

/** A name as a header value: header values cannot hold line ends, and other control bytes would only confuse readers. */
export function headerName(name: string): string {
  return /^[\x20-\x7E]*$/.test(name) ? name : encodeToken(name);
}
