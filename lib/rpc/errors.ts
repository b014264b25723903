/**
 * The bytes of the libvirt RPC layer that are not the protocol, below
 * lib/errors.ts's root (whose comment draws the whole tree):
 *
 *   QmpxError
 *   └── ProtocolError (code PROTOCOL_ERROR)
 *       ├── XdrError     bytes that are not the XDR the layout says: `reason`, `offset`.
 *       │                Inside a message body it costs only that call an error reply.
 *       └── FrameError   the byte stream can no longer be split into messages:
 *                        connection-level, the connection must close (`reason`).
 *
 * ProtocolError fixes `code` to PROTOCOL_ERROR, so the two subclasses tell
 * their cases apart by a stable `reason` instead. A procedure's own failure
 * is an RpcError (lib/rpc/rpc-error.ts), which needs the message layouts
 * that the XDR reader below them throws these errors from.
 */
import { ProtocolError, type QmpxErrorOptions } from '../errors.js';

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
