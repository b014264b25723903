/**
 * Errors of the libvirt RPC layer, below lib/errors.ts's root:
 *
 *   QmpxError
 *   ├── ProtocolError (code PROTOCOL_ERROR)
 *   │   ├── XdrError     bytes that are not the XDR the layout says: `reason`, `offset`.
 *   │   │                Inside a message body it costs only that call an error reply.
 *   │   └── FrameError   the byte stream can no longer be split into messages:
 *   │                    connection-level, the connection must close (`reason`).
 *   └── RpcError (code RPC_ERROR)
 *                        a procedure failed; carries the remote_error that is sent back
 *                        with status ERROR and the call's serial.
 *
 * ProtocolError fixes `code` to PROTOCOL_ERROR, so the two subclasses tell
 * their cases apart by a stable `reason` instead.
 */
import { ProtocolError, QmpxError, type QmpxErrorOptions } from '../errors.js';
import type { RemoteError } from './messages.js';
import { ERROR_TEMPLATES, ErrorLevel, type ErrorCodeValue } from './protocol.js';

export type XdrErrorReason =
  /** A read needed more bytes than are left. */
  | 'overrun'
  /** Bytes left over after a value that should fill the whole input. */
  | 'trailing-bytes'
  /** A string or variable opaque declares more bytes than its maximum. */
  | 'too-long'
  /** A variable array declares more items than its maximum. */
  | 'too-many-items'
  /** A bool or optional discriminant other than 0 or 1. */
  | 'bad-discriminant'
  /** A padding byte that is not zero. */
  | 'bad-padding'
  /** String bytes that are not valid UTF-8. */
  | 'bad-utf8'
  /** Encoding: a number outside the XDR type's range, or a fixed opaque of the wrong size. */
  | 'out-of-range'
  /** Encoding: the output would pass its byte limit. */
  | 'too-large';

/** Bytes that do not decode as the expected XDR layout, or a value that cannot be encoded. */
export class XdrError extends ProtocolError {
  constructor(
    message: string,
    readonly reason: XdrErrorReason,
    /** Byte offset in the buffer being read or written where the problem was found. */
    readonly offset: number,
    evidence?: string,
    options?: QmpxErrorOptions,
  ) {
    super(message, evidence, options);
  }
}

export type FrameErrorReason =
  /** The length word is below 28 (length word + header). */
  | 'too-short'
  /** The length word announces more than the message limit. */
  | 'too-long'
  /** A *_WITH_FDS message without room for its fd count, or announcing more than 32 fds. */
  | 'bad-fd-count'
  /** More undispatched input was buffered than allowed (the reader ignored back-pressure). */
  | 'input-overflow';

/**
 * The stream cannot be framed any more. libvirt closes such a client without
 * a reply (virNetMessageDecodeLength / DecodeNumFDs failures), and there is no
 * serial to answer anyway: the connection must close.
 */
export class FrameError extends ProtocolError {
  constructor(
    message: string,
    readonly reason: FrameErrorReason,
    evidence?: string,
  ) {
    super(message, evidence);
  }
}

/**
 * A procedure failed. Handlers throw it; the dispatcher sends `remote` back
 * as the body of a status ERROR reply with the call's serial.
 */
export class RpcError extends QmpxError {
  override readonly code = 'RPC_ERROR';

  constructor(
    /** The exact remote_error to send. */
    readonly remote: RemoteError,
    options?: QmpxErrorOptions,
  ) {
    super(remote.message ?? `libvirt error ${remote.code}`, options);
  }

  /** libvirt's error number (remote_error.code). */
  get errorCode(): number {
    return this.remote.code;
  }

  /** libvirt's error domain (remote_error.domain). */
  get errorDomain(): number {
    return this.remote.domain;
  }

  /**
   * The error libvirt's virReportError(code, "%s", detail) would send:
   * message = the code's template filled with `detail`, str1 = the template,
   * str2 = `detail`, int1 = int2 = -1, level ERROR, no domain or network.
   * That is the shape of every error reply in the captures but one (the
   * "unsupported flags" one, which a caller can build with the constructor).
   */
  static report(code: ErrorCodeValue, domain: number, detail: string, options?: QmpxErrorOptions): RpcError {
    const template = ERROR_TEMPLATES[code];
    return new RpcError(
      {
        code,
        domain,
        message: template.replace('%s', () => detail),
        level: ErrorLevel.ERROR,
        dom: null,
        str1: template,
        str2: detail,
        str3: null,
        int1: -1,
        int2: -1,
        net: null,
      },
      options,
    );
  }
}
