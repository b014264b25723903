/**
 * What can go wrong with a request over NATS that has no counterpart on a
 * monitor socket. Both are in the error tree of lib/errors.ts and exported
 * by 'qmpx'.
 */
import { QmpxError, TimeoutError } from '../errors.js';

/**
 * No reply came within the deadline. Unlike a socket, where the request is
 * known to be queued behind the others, NATS gives no word of where the
 * request got to: the serve may have received it and QEMU may have run it
 * (a `stop` may have stopped the VM), or it may never have left. The
 * outcome is unknown, not failed; the caller must look (query-status)
 * before it repeats a command that changes the VM.
 */
export class OutcomeUnknownError extends TimeoutError {
  override readonly code = 'OUTCOME_UNKNOWN';

  constructor(
    readonly subject: string,
    timeoutMs: number,
    command: string,
    /** What the serve said, when it was the serve that got no reply from QEMU. */
    serveSaid?: string,
  ) {
    super(
      serveSaid === undefined
        ? `${command}: no reply on ${subject} within ${timeoutMs} ms: outcome unknown (the VM may have run it)`
        : `${command}: outcome unknown, the serve on ${subject} says: ${serveSaid}`,
      timeoutMs,
      command,
    );
  }
}

/**
 * Nothing subscribes to the subject: no `qmpx serve --nats` serves that VM
 * under that host name (or none is connected to this NATS server now). The
 * request reached no one, so nothing ran.
 */
export class NoResponderError extends QmpxError {
  override readonly code = 'NO_RESPONDER';

  constructor(
    /** The subject nobody answered, or the run-state keys looked up for the VM's host. */
    readonly subject: string,
    readonly vm: string,
    /** Undefined when no host has a VM of that name at all. */
    readonly host?: string,
  ) {
    super(
      host === undefined
        ? `no qmpx serve answers for VM '${vm}': no host has it (${subject}); nothing was run`
        : `no qmpx serve answers for VM '${vm}' on host '${host}' (no responder on ${subject}); nothing was run`,
    );
  }
}

/**
 * The NATS server refused to carry the request: this user may not publish
 * to the subject (a permission violation). Nothing was sent to the VM.
 */
export class PermissionDeniedError extends QmpxError {
  override readonly code = 'PERMISSION_DENIED';

  constructor(
    readonly subject: string,
    message: string,
  ) {
    super(`the NATS server refused the request: ${message}; nothing was sent to the VM`);
  }
}
