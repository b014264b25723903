/**
 * QMP commands that carry file descriptors: when one may be written and how
 * (lib/session/fd-writer.ts writes it). While a command with fds is being
 * written, nothing else is. One with fds waits until no command that takes
 * fds is in flight: QEMU reads ahead while earlier commands wait to run, and
 * would hand its fds to an earlier `getfd` or `add-fd`, or close them for a
 * later message's fds (docs/fd-passing.md).
 *
 *   queued ──fds? no──▶ written when the window has room and no fds are being written
 *      │ yes
 *      ▼
 *   no getfd/add-fd in flight? ──▶ FdWriter.write ──done──▶ the queue goes on
 */
import type { RawRequestOptions } from '../contract.js';
import { requestedFds, takesFds } from '../session/fd-rules.js';
import type { FdWriter } from '../session/fd-writer.js';
import type { QmpRequest } from './request.js';

export class QmpFdCommands {
  constructor(private readonly writer: FdWriter) {}

  /** A command with fds is being written: nothing else may be written in-band. */
  get busy(): boolean {
    return this.writer.busy;
  }

  /** Records on `request` the fds it sends and whether its command takes fds. */
  prepare(request: QmpRequest, opts: RawRequestOptions): void {
    request.fds = requestedFds(opts.fds);
    request.takesFds = takesFds(request.command);
  }

  /** Whether `next`, the oldest queued command, may be written now, with `inFlight` written and unanswered. */
  mayGoNext(next: QmpRequest | undefined, inFlight: readonly QmpRequest[]): boolean {
    if (this.writer.busy) return false;
    if (next?.fds === undefined) return true;
    return !inFlight.some((request) => request.takesFds);
  }

  /**
   * Writes `request` with its fds (none once it has settled: its caller may
   * have closed them); a failure to send them rejects it. `resume` is called
   * when the write finishes later than this call, for the queue to go on
   * (when it finishes at once, the caller is still writing the queue).
   */
  write(request: QmpRequest, resume: () => void): void {
    const fds = request.fds!;
    let returned = false;
    this.writer.write(
      request.wireText,
      () => (request.settled ? [] : fds),
      (error) => {
        if (error !== undefined) request.reject(error);
        if (returned) resume();
      },
    );
    returned = true;
  }
}
