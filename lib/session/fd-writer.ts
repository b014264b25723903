/**
 * Writes one command with file descriptors attached, in its place in the
 * stream. The fds travel with the first byte of the sendmsg that carries
 * them (docs/fd-passing.md), so that sendmsg must come after every byte
 * written before it and before any byte written after it:
 *
 *   write(text, fds) ─▶ Node's write queue empty? ──no──▶ wait for it (a zero-byte write's callback), ask again
 *                               │ yes
 *                               ▼
 *                       sendmsg(text, fds) ──would block──▶ try again shortly
 *                               │ took n bytes
 *                               ▼
 *                       the rest of text through Node, done()
 *
 * While `busy`, the session writes nothing else in-band.
 */
import type { Duplex } from 'node:stream';
import { ConnectionClosedError, InvalidArgumentError, QmpxError } from '../errors.js';
import type { FdSender } from '../transport.js';

const EMPTY = Buffer.alloc(0);
/** Waits between attempts while the kernel's send buffer is full: doubling from the first to the last. */
const FIRST_RETRY_MS = 1;
const LAST_RETRY_MS = 64;

export class FdWriter {
  #busy = false;

  constructor(
    private readonly socket: Duplex,
    private readonly sender: FdSender,
  ) {}

  /** A message with fds is being written: nothing else may be written in-band until it is done. */
  get busy(): boolean {
    return this.#busy;
  }

  /**
   * Writes `text` with the fds `fdsNow()` returns at the moment of sending
   * (none once the request has settled: its caller may have closed them).
   * `done` is called once the whole text is handed over, or with the error
   * that stopped it; the text is then written without fds, unless the
   * connection is closed, so the command keeps its place on the wire.
   */
  write(text: string, fdsNow: () => readonly number[], done: (error?: QmpxError) => void): void {
    this.#busy = true;
    const bytes = Buffer.from(text);
    let retryMs = FIRST_RETRY_MS;
    const finish = (error?: QmpxError): void => {
      this.#busy = false;
      done(error);
    };
    const attempt = (): void => {
      if (this.socket.destroyed) return finish(new ConnectionClosedError('the connection closed before the file descriptors were sent'));
      if (this.socket.writableLength > 0) {
        this.socket.write(EMPTY, attempt);
        return;
      }
      let sent: number;
      try {
        sent = this.sender.sendWithFds(bytes, fdsNow());
      } catch (error) {
        const refusal = sendError(error as Error, fdsNow());
        if (!this.socket.destroyed) this.socket.write(bytes);
        return finish(refusal);
      }
      if (sent < 0) {
        setTimeout(attempt, retryMs);
        retryMs = Math.min(LAST_RETRY_MS, retryMs * 2);
        return;
      }
      if (sent < bytes.length) this.socket.write(bytes.subarray(sent));
      finish();
    };
    attempt();
  }
}

function sendError(error: Error, fds: readonly number[]): QmpxError {
  if (error instanceof QmpxError) return error;
  const code = (error as { code?: unknown }).code;
  if (code === 'EBADF') {
    return new InvalidArgumentError(`file descriptors ${fds.join(', ')}: one is not open (sendmsg: EBADF); the command was sent without them`, undefined, {
      cause: error,
    });
  }
  return new ConnectionClosedError(`sending file descriptors failed: ${error.message}`, { cause: error });
}
