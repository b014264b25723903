/**
 * Every error qmpx throws or rejects with descends from QmpxError and carries a
 * stable `code`, so callers can branch without matching message text. This is
 * the whole tree; each class says where it lives and which package entry
 * exports it ('qmpx', 'qmpx/passthrough', or none: used inside the daemon and
 * the CLI only).
 *
 *   QmpxError (code QMPX_ERROR: bad addresses, configs and sockets)  lib/errors.ts  'qmpx'
 *   ├── QmpError               QMP_ERROR: QEMU answered {"error": {...}}: errorClass, desc, command
 *   ├── HmpError               HMP_ERROR: the human monitor printed an error: commandLine, output
 *   ├── ProtocolError          PROTOCOL_ERROR: the peer broke the wire protocol: evidence (the raw text)
 *   │   ├── XdrError           bytes that are not the XDR layout: reason, offset    lib/rpc/errors.ts
 *   │   └── FrameError         a libvirt byte stream that cannot be framed: reason  lib/rpc/errors.ts
 *   ├── ConnectionClosedError  CONNECTION_CLOSED: the connection ended before the request settled: cause
 *   ├── TimeoutError           TIMEOUT: a request's own deadline passed: command, timeoutMs
 *   │   ├── GreetingTimeoutError   GREETING_TIMEOUT: no greeting within greetingTimeoutMs
 *   │   └── OutcomeUnknownError    OUTCOME_UNKNOWN: no reply over NATS in time; the VM may have
 *   │                              run it: subject                          lib/nats/remote-errors.ts
 *   ├── NoResponderError       NO_RESPONDER: no serve answers for that VM over NATS: subject,
 *   │                          host, vm                                     lib/nats/remote-errors.ts
 *   ├── PermissionDeniedError  PERMISSION_DENIED: the NATS server refused the subject: subject
 *   │                                                                       lib/nats/remote-errors.ts
 *   ├── AbortError             ABORTED: the caller's AbortSignal fired
 *   ├── UnsupportedError       UNSUPPORTED: refused before anything was sent: what and why
 *   │   └── StateError         NOT_READY: the monitor is not ready (negotiating or closed): state
 *   ├── InvalidArgumentError   INVALID_ARGUMENT: the caller passed something unusable: position
 *   │                          ('qmpx' and 'qmpx/passthrough')
 *   ├── ArgumentsRefusedError  ARGUMENTS_REFUSED: qmpx checked the arguments against QEMU's
 *   │                          schema and did not send them: command, member, desc   lib/qapi/errors.ts
 *   ├── QapiSchemaError        QAPI_SCHEMA: QEMU's schema could not be read          lib/qapi/errors.ts
 *   ├── EventQueueOverflowError  EVENT_QUEUE_OVERFLOW: an event listener's reader fell
 *   │                          behind its bounded queue: maxQueued, dropped          lib/event-wait.ts
 *   ├── RpcError               RPC_ERROR: a libvirt procedure failed: remote       lib/rpc/rpc-error.ts
 *   └── LaunchError            LAUNCH_FAILED: QEMU did not start serving: argv, stderr  lib/launch/qemu.ts
 *
 * The classes without a location are in this file and exported by 'qmpx'.
 * The CLI's own errors (lib/cli: CliError, CommandLineError, XmlSyntaxError,
 * LibvirtXmlError, JsonTextError) are not part of the tree: they describe a
 * command line or a file given to the `qmpx` program, never leave it, and are
 * turned into its exit status and message. Plain Error is thrown only for a
 * broken internal invariant (a bug in qmpx, such as an illegal state change).
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
    likelyCause = "another client may be holding the monitor (QEMU queues a second client silently until the first disconnects); a qmpx serve greets only while its QEMU is connected; a guest-agent socket never greets (connect to it with protocol 'qga')",
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

/**
 * The caller passed something unusable; nothing was sent and nothing changed.
 * It mirrors libvirt's VIR_ERR_INVALID_ARG, which libvirt raises for the same
 * mistakes (an already tracked callback, an unknown callback id, a bad
 * regex), plus text that is not JSON at all. Thrown by the pass-through API
 * and mapped back to VIR_ERR_INVALID_ARG by the libvirt endpoint.
 */
export class InvalidArgumentError extends QmpxError {
  override readonly code = 'INVALID_ARGUMENT';

  constructor(
    message: string,
    /** For text that is not JSON: where the problem is, in UTF-16 code units from 0. */
    readonly position?: number,
    options?: QmpxErrorOptions,
  ) {
    super(message, options);
  }
}
