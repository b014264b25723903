/**
 * Every error qmpx throws or rejects with descends from QmpxError and carries a
 * stable `code`, so callers can branch without matching message text.
 *
 *   QmpxError (code: string)
 *   ├── QmpError               QEMU answered {"error": {...}}: errorClass, desc, command
 *   ├── HmpError               the human monitor printed an error: commandLine, output
 *   ├── ProtocolError          the peer broke the wire protocol: evidence (the raw text)
 *   ├── ConnectionClosedError  the connection ended before the request settled: cause
 *   ├── TimeoutError           a request's own deadline passed: command, timeoutMs
 *   │   └── GreetingTimeoutError   no greeting within greetingTimeoutMs
 *   ├── AbortError             the caller's AbortSignal fired
 *   └── UnsupportedError       refused before anything was sent: what and why
 *       └── StateError         the monitor is not ready (negotiating or closed): state
 */

export interface QmpxErrorOptions {
  cause?: unknown;
}

export class QmpxError extends Error {
  readonly code: string = 'QMPX_ERROR';

  constructor(message: string, options?: QmpxErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** QEMU (or the guest agent) answered the command with an error object. */
export class QmpError extends QmpxError {
  override readonly code = 'QMP_ERROR';

  constructor(
    /** QEMU's error class, e.g. `GenericError`, `CommandNotFound`. */
    readonly errorClass: string,
    /** QEMU's human-readable description, verbatim. */
    readonly desc: string,
    /** The command that failed. */
    readonly command: string,
  ) {
    super(`${command}: ${errorClass}: ${desc}`);
  }
}

/** The human monitor printed error text (only with `throwOnError`). */
export class HmpError extends QmpxError {
  override readonly code = 'HMP_ERROR';

  constructor(
    readonly commandLine: string,
    readonly output: string,
  ) {
    super(`${commandLine}: ${output.trim()}`);
  }
}

/** The peer sent something the protocol does not allow; `evidence` is what it sent. */
export class ProtocolError extends QmpxError {
  override readonly code: string = 'PROTOCOL_ERROR';

  constructor(
    message: string,
    readonly evidence?: string,
    options?: QmpxErrorOptions,
  ) {
    super(message, options);
  }
}

/** The connection ended (EOF, reset, close()) while the request was pending. */
export class ConnectionClosedError extends QmpxError {
  override readonly code = 'CONNECTION_CLOSED';

  constructor(message = 'monitor connection closed', options?: QmpxErrorOptions) {
    super(message, options);
  }
}

/** A request's deadline passed; the request is settled and its late reply will be dropped. */
export class TimeoutError extends QmpxError {
  override readonly code: string = 'TIMEOUT';

  constructor(
    message: string,
    readonly timeoutMs: number,
    readonly command?: string,
  ) {
    super(message);
  }
}

/**
 * No greeting arrived in time. QEMU accepts a second connection on a busy
 * monitor socket but greets it only when the first client leaves, so silence
 * usually means someone else holds the monitor.
 */
export class GreetingTimeoutError extends TimeoutError {
  override readonly code = 'GREETING_TIMEOUT';

  constructor(
    timeoutMs: number,
    /** The first bytes seen, if any (for protocol detection failures). */
    readonly seen = '',
    /** What silence most likely means for this kind of peer. */
    likelyCause = 'another client may be holding the monitor (QEMU queues a second client silently until the first disconnects)',
  ) {
    super(
      `no greeting from the monitor within ${timeoutMs} ms: ${likelyCause}` + (seen ? `; received so far: ${JSON.stringify(seen)}` : ''),
      timeoutMs,
    );
  }
}

/** The caller's AbortSignal fired before the reply arrived. */
export class AbortError extends QmpxError {
  override readonly code = 'ABORTED';

  constructor(
    readonly command: string,
    options?: QmpxErrorOptions,
  ) {
    super(`${command}: aborted`, options);
  }
}

/** The request cannot be carried out on this monitor; nothing was sent. */
export class UnsupportedError extends QmpxError {
  override readonly code: string = 'UNSUPPORTED';
}

/**
 * The monitor is not in a state that takes requests (still negotiating, or
 * closed); nothing was sent. A subclass of UnsupportedError, which is what
 * callers caught before this class existed.
 */
export class StateError extends UnsupportedError {
  override readonly code = 'NOT_READY';

  constructor(
    message: string,
    /** The monitor's run state when the request was refused. */
    readonly state: string,
  ) {
    super(message);
  }
}
